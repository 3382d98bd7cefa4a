// server.c — the HTTP side of `t2 serve` (see server.h) on libmicrohttpd, one thread per connection:
// a request's thread waits for a slot, answers, and for `stream: true` runs the decoding loop from
// MHD's content-reader callback, so a client that leaves ends its answer and frees its slot. Routes:
//   GET  /                      the demo page (index.html, app.js, style.css)
//   GET  /health                {"status": "ok", slots, queue}
//   GET  /v1/models             the one model
//   GET  /v1/samples            the sample images the page offers; GET /samples/NAME serves one
//   POST /v1/chat/completions   OpenAI chat completions, streamed as server-sent events on request
// Not here: checking requests (api.c), running the model (engine.c).
#include "server/server.h"
#include "core/error.h"
#include "core/util.h"
#include "server/api.h"
#include "server/engine.h"
#include "server/www.h"
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct t2_server {
    struct MHD_Daemon *d;
    t2_srv_engine *engine;
    t2_vlm *m;
    t2_server_opts o;
    char *model_name, *www_dir, *samples_dir, *media_dir;
    int port, draining;
    long created;
    unsigned long next_id;
};

// Per request: the body as it arrives.
typedef struct {
    char *body;
    size_t len, cap;
    int refused;        // a response (413) was queued before the body came
    int too_big;        // the body grew past the cap: dropped, 413 at its end
    double t0;
} request_ctx;

// A streamed answer: owned by its MHD response, freed (with its job and slot) when MHD is done.
typedef struct {
    t2_server *s;
    t2_srv_job *job;
    int fd;
    int phase;          // 0 role chunk, 1 text, 2 final chunk, 3 [DONE], 4 end
    char id[48];
    char *out;
    size_t out_len, out_off;
    double t0;
    char method_url[96];
} stream_ctx;

// ---- responses ----

static void add_common_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
}

static MHD_RESULT send_buffer(struct MHD_Connection *c, int status, const char *type, const void *data, size_t n,
                              enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    add_common_headers(r);
    MHD_RESULT ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

// Sends JSON text J (malloc'd, taken).
static MHD_RESULT send_json(struct MHD_Connection *c, int status, char *j) {
    return send_buffer(c, status, "application/json", j, strlen(j), MHD_RESPMEM_MUST_FREE);
}

static void log_line(const t2_server *s, const char *method, const char *url, int status, double t0) {
    if (s->o.quiet) return;
    char safe[512];   // the URL as the client sent it (decoded), on one line
    t2_srv_printable(url, safe, sizeof safe);
    fprintf(stderr, "t2 serve: %s %s %d %.1f ms\n", method, safe, status, (t2_now() - t0) * 1e3);
}

static MHD_RESULT send_error(t2_server *s, struct MHD_Connection *c, const char *method, const char *url,
                             const t2_srv_error *e, double t0) {
    struct MHD_Response *r;
    char *j = t2_srv_error_json(e);
    r = MHD_create_response_from_buffer(strlen(j), j, MHD_RESPMEM_MUST_FREE);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    add_common_headers(r);
    if (e->status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (e->status == 405) MHD_add_response_header(r, "Allow", strstr(url, "/chat/completions") ? "POST" : "GET");
    if (e->status == 413) MHD_add_response_header(r, "Connection", "close");
    MHD_RESULT ret = MHD_queue_response(c, (unsigned)e->status, r);
    MHD_destroy_response(r);
    log_line(s, method, url, e->status, t0);
    return ret;
}

static char *model_object(const t2_server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", s->model_name);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)s->created);
    cJSON_AddStringToObject(o, "owned_by", "t2");
    cJSON *meta = cJSON_AddObjectToObject(o, "meta");
    cJSON_AddStringToObject(meta, "kind", t2_vlm_kind(s->m));
    cJSON_AddBoolToObject(meta, "vision", t2_vlm_has_vision(s->m));
    cJSON_AddStringToObject(meta, "chat_template", t2_srv_engine_template(s->engine));
    cJSON_AddNumberToObject(meta, "n_ctx", t2_srv_engine_ctx(s->engine));
    cJSON *ex = cJSON_AddArrayToObject(meta, "experts");
    const char *names[64];
    int classifier = 0, ne = t2_srv_engine_experts(s->engine, names, 64, &classifier);
    for (int i = 0; i < ne; i++) cJSON_AddItemToArray(ex, cJSON_CreateString(names[i]));
    cJSON_AddBoolToObject(meta, "classifier", classifier);
    cJSON *list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "object", "list");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(list, "data"), o);
    char *txt = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    return txt;
}

static char *health_json(const t2_server *s, int *status) {
    int active, waiting, slots, queue;
    t2_srv_engine_load(s->engine, &active, &waiting, &slots, &queue);
    cJSON *o = cJSON_CreateObject();
    int draining = __atomic_load_n(&s->draining, __ATOMIC_RELAXED);
    cJSON_AddStringToObject(o, "status", draining ? "draining" : "ok");
    cJSON_AddStringToObject(o, "model", s->model_name);
    cJSON_AddNumberToObject(o, "slots", slots);
    cJSON_AddNumberToObject(o, "slots_busy", active);
    cJSON_AddNumberToObject(o, "queue", queue);
    cJSON_AddNumberToObject(o, "waiting", waiting);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *status = draining ? 503 : 200;
    return txt;
}

static char *samples_json(const t2_server *s) {
    char **names;
    int n = t2_www_list_images(s->samples_dir, &names);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < n; i++) {
        cJSON *it = cJSON_CreateObject();
        char url[512];
        snprintf(url, sizeof url, "/samples/%s", names[i]);
        char *clean = t2_utf8_sanitize(names[i], strlen(names[i]));
        cJSON_AddStringToObject(it, "name", clean);
        char *cu = t2_utf8_sanitize(url, strlen(url));
        cJSON_AddStringToObject(it, "url", cu);
        free(clean);
        free(cu);
        cJSON_AddItemToArray(arr, it);
        free(names[i]);
    }
    free(names);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

static MHD_RESULT serve_file(t2_server *s, struct MHD_Connection *c, const char *method, const char *url,
                             const char *dir, const char *name, int page, double t0) {
    const void *data;
    size_t size;
    void *owned = NULL;
    t2_srv_error e;
    int rc;
    if (page) rc = t2_www_get(dir, name, &data, &size, &owned);
    else if (!dir || !t2_www_is_image_name(name)) rc = t2_fail("no such sample '%s'", name);
    else rc = t2_www_get(dir, name, &data, &size, &owned);
    if (rc) {
        t2_srv_fail(&e, 404, "not_found_error", "not_found", "%s", t2_last_error());
        return send_error(s, c, method, url, &e, t0);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(size, (void *)data, owned ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    free(owned);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", t2_www_mime(name));
    add_common_headers(r);
    if (page && strstr(name, ".html"))
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'");
    MHD_RESULT ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    log_line(s, method, url, 200, t0);
    return ret;
}

// ---- chat completions ----

// 0 once the peer closed its side (polled while waiting and decoding).
static int peer_alive(void *ctx) {
    int fd = *(int *)ctx;
    if (fd < 0) return 1;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 0;
    return 1;
}

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static cJSON *usage_json(const t2_srv_job_info *info) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", info->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", info->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", info->prompt_tokens + info->completion_tokens);
    return u;
}

static void add_t2_and_timings(cJSON *o, const t2_srv_job_info *info) {
    cJSON *t2 = cJSON_AddObjectToObject(o, "t2");
    t2_srv_adapt_json(t2, &info->adapt, info->second_pass_ms);
    cJSON *tm = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(tm, "queue_ms", round(info->queue_ms * 100) / 100);
    cJSON_AddNumberToObject(tm, "image_encode_ms", round(info->encode_ms * 100) / 100);
    cJSON_AddNumberToObject(tm, "prefill_ms", round(info->prefill_ms * 100) / 100);
    cJSON_AddNumberToObject(tm, "decode_ms", round(info->decode_ms * 100) / 100);
    cJSON_AddNumberToObject(tm, "image_tokens", info->image_tokens);
}

static cJSON *chunk_base(const stream_ctx *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", st->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "model", st->s->model_name);
    return o;
}

// Appends "data: JSON\n\n" for O (deleted) to the stream's output.
static void sse_emit(stream_ctx *st, cJSON *o) {
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t n = strlen(j);
    st->out = t2_realloc(st->out, st->out_len + n + 9);
    memcpy(st->out + st->out_len, "data: ", 6);
    memcpy(st->out + st->out_len + 6, j, n);
    memcpy(st->out + st->out_len + 6 + n, "\n\n", 2);
    st->out_len += n + 8;
    free(j);
}

static cJSON *choice_with_delta(cJSON *o, cJSON **delta) {
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    *delta = cJSON_AddObjectToObject(ch, "delta");
    cJSON_AddItemToArray(choices, ch);
    return ch;
}

static void stream_produce(stream_ctx *st) {
    cJSON *o, *delta, *ch;
    switch (st->phase) {
    case 0:
        o = chunk_base(st);
        ch = choice_with_delta(o, &delta);
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
        cJSON_AddNullToObject(ch, "finish_reason");
        sse_emit(st, o);
        st->phase = 1;
        break;
    case 1: {
        const char *text;
        size_t len;
        int over = t2_srv_job_step(st->job, &text, &len);
        if (len > 0) {
            o = chunk_base(st);
            ch = choice_with_delta(o, &delta);
            cJSON_AddStringToObject(delta, "content", text);
            cJSON_AddNullToObject(ch, "finish_reason");
            sse_emit(st, o);
        }
        if (over) st->phase = 2;
        break;
    }
    case 2: {
        t2_srv_job_info info;
        t2_srv_job_info_get(st->job, &info);
        if (!strcmp(info.finish_reason, "error")) {
            t2_srv_error e;
            t2_srv_fail(&e, 500, "server_error", "forward_failed", "%s", info.error);
            char *j = t2_srv_error_json(&e);
            o = cJSON_Parse(j);
            free(j);
            sse_emit(st, o);
        } else {
            o = chunk_base(st);
            ch = choice_with_delta(o, &delta);
            cJSON_AddStringToObject(ch, "finish_reason", info.finish_reason);
            cJSON_AddItemToObject(o, "usage", usage_json(&info));
            add_t2_and_timings(o, &info);
            sse_emit(st, o);
        }
        st->phase = 3;
        break;
    }
    case 3: {
        const char *done = "data: [DONE]\n\n";
        size_t n = strlen(done);
        st->out = t2_realloc(st->out, st->out_len + n);
        memcpy(st->out + st->out_len, done, n);
        st->out_len += n;
        st->phase = 4;
        log_line(st->s, "POST", st->method_url, 200, st->t0);
        break;
    }
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_ctx *st = cls;
    while (st->out_off == st->out_len) {
        st->out_off = st->out_len = 0;
        if (st->phase == 4) return MHD_CONTENT_READER_END_OF_STREAM;
        stream_produce(st);
    }
    size_t n = st->out_len - st->out_off < max ? st->out_len - st->out_off : max;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_ctx *st = cls;
    if (st->phase < 4) log_line(st->s, "POST", st->method_url, 499, st->t0);   // the client left mid-answer
    t2_srv_job_free(st->job);
    free(st->out);
    free(st);
}

static MHD_RESULT chat_completions(t2_server *s, struct MHD_Connection *c, const char *url, request_ctx *rc) {
    t2_srv_error e;
    t2_srv_request rq;
    t2_srv_parse_opts po = {t2_vlm_has_vision(s->m), s->media_dir, 0, s->o.max_tokens};
    // decoding the images takes memory: only as many requests as there are slots and queue places
    if (t2_srv_engine_admit(s->engine, &e)) return send_error(s, c, "POST", url, &e, rc->t0);
    int bad = t2_srv_request_parse(rc->body ? rc->body : "", rc->len, &po, &rq, &e);
    t2_srv_engine_unadmit(s->engine);
    if (bad) return send_error(s, c, "POST", url, &e, rc->t0);
    int stream = rq.stream;
    stream_ctx *st = t2_calloc(1, sizeof *st);
    st->s = s;
    st->fd = conn_fd(c);
    st->t0 = rc->t0;
    snprintf(st->method_url, sizeof st->method_url, "%s", url);
    snprintf(st->id, sizeof st->id, "chatcmpl-t2-%lx-%lu", (unsigned long)s->created,
             __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED));
    st->job = t2_srv_job_start(s->engine, &rq, peer_alive, &st->fd, &e);
    if (!st->job) {
        free(st);
        if (e.status == 0) return MHD_NO;   // the client left while waiting: close the connection
        return send_error(s, c, "POST", url, &e, rc->t0);
    }
    if (stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st, stream_free);
        if (!r) { stream_free(st); return MHD_NO; }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_RESULT ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    const char *text;
    size_t len;
    while (!t2_srv_job_step(st->job, &text, &len)) {}
    t2_srv_job_info info;
    t2_srv_job_info_get(st->job, &info);
    if (!strcmp(info.finish_reason, "error")) {
        t2_srv_fail(&e, 500, "server_error", "forward_failed", "%s", info.error);
        stream_free(st);
        return send_error(s, c, "POST", url, &e, rc->t0);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", st->id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "model", s->model_name);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", t2_srv_job_text(st->job, NULL));
    cJSON_AddStringToObject(ch, "finish_reason", info.finish_reason);
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddItemToObject(o, "usage", usage_json(&info));
    add_t2_and_timings(o, &info);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    st->phase = 4;
    stream_free(st);
    MHD_RESULT ret = send_json(c, 200, j);
    log_line(s, "POST", url, 200, rc->t0);
    return ret;
}

// ---- routing ----

static MHD_RESULT handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                         const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    t2_server *s = cls;
    request_ctx *rc = *con_cls;
    t2_srv_error e;
    int is_post = !strcmp(method, "POST");
    if (!rc) {
        rc = t2_calloc(1, sizeof *rc);
        rc->t0 = t2_now();
        *con_cls = rc;
        if (is_post) {
            // A body announced too big is refused before it is read when the client waits for that
            // ("Expect: 100-continue", as curl does for large bodies) or it is past all reason;
            // otherwise it is read and dropped, so that a client that sends before it reads still
            // gets the 413 (an early answer would meet a reset connection).
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
            if (n > s->o.max_body && !expect && n <= 4 * (unsigned long long)s->o.max_body) rc->too_big = 1;
            else if (n > s->o.max_body) {
                rc->refused = 1;
                t2_srv_fail(&e, 413, "invalid_request_error", "request_too_large",
                            "the request body (%s bytes) exceeds the limit of %zu bytes", cl, s->o.max_body);
                return send_error(s, c, method, url, &e, rc->t0);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rc->refused) return MHD_YES;
        if (rc->too_big || rc->len + n > s->o.max_body) {
            // Past the cap: read and drop the rest (MHD cannot answer in the middle of an upload),
            // answer 413 at its end; close without an answer if it goes on past 4 × the cap.
            if (!rc->too_big) { free(rc->body); rc->body = NULL; rc->too_big = 1; }
            rc->len += n;
            return rc->len > 4 * s->o.max_body ? MHD_NO : MHD_YES;
        }
        if (rc->len + n + 1 > rc->cap) {
            rc->cap = (rc->len + n + 1) * 2 < s->o.max_body + 1 ? (rc->len + n + 1) * 2 : s->o.max_body + 1;
            char *b = realloc(rc->body, rc->cap);   // out of memory: drop this request, not the server
            if (!b) return MHD_NO;
            rc->body = b;
        }
        memcpy(rc->body + rc->len, upload, n);
        rc->len += n;
        rc->body[rc->len] = 0;
        return MHD_YES;
    }
    if (rc->refused) return MHD_YES;
    if (rc->too_big) {
        t2_srv_fail(&e, 413, "invalid_request_error", "request_too_large", "the request body exceeds the limit of %zu bytes",
                    s->o.max_body);
        return send_error(s, c, method, url, &e, rc->t0);
    }

    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) {
        if (!is_post) goto not_allowed;
        return chat_completions(s, c, url, rc);
    }
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/health")) {
        if (!is_get) goto not_allowed;
        int status;
        char *j = health_json(s, &status);
        log_line(s, method, url, status, rc->t0);
        return send_json(c, status, j);
    }
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) {
        if (!is_get) goto not_allowed;
        log_line(s, method, url, 200, rc->t0);
        return send_json(c, 200, model_object(s));
    }
    if (!strcmp(url, "/v1/samples")) {
        if (!is_get) goto not_allowed;
        log_line(s, method, url, 200, rc->t0);
        return send_json(c, 200, samples_json(s));
    }
    if (!strncmp(url, "/samples/", 9)) {
        if (!is_get) goto not_allowed;
        return serve_file(s, c, method, url, s->samples_dir, url + 9, 0, rc->t0);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html") || !strcmp(url, "/app.js") || !strcmp(url, "/style.css")) {
        if (!is_get) goto not_allowed;
        return serve_file(s, c, method, url, s->www_dir, strcmp(url, "/") ? url + 1 : "index.html", 1, rc->t0);
    }
    t2_srv_fail(&e, 404, "not_found_error", "not_found", "no route %s %s", method, url);
    return send_error(s, c, method, url, &e, rc->t0);
not_allowed:
    t2_srv_fail(&e, 405, "invalid_request_error", "method_not_allowed", "%s is not allowed on %s", method, url);
    return send_error(s, c, method, url, &e, rc->t0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    request_ctx *rc = *con_cls;
    if (!rc) return;
    free(rc->body);
    free(rc);
    *con_cls = NULL;
}

// ---- life cycle ----

// Everything a server owns but the daemon (stopped before, or never started).
static void release(t2_server *s) {
    t2_srv_engine_free(s->engine);
    free(s->model_name);
    free(s->www_dir);
    free(s->samples_dir);
    free(s->media_dir);
    free(s);
}

t2_server *t2_server_start(t2_vlm *m, const t2_server_opts *o) {
    t2_server *s = t2_calloc(1, sizeof *s);
    s->m = m;
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    if (s->o.slots <= 0) s->o.slots = 1;
    if (s->o.queue < 0) s->o.queue = 4 * s->o.slots;
    if (!s->o.max_body) s->o.max_body = (size_t)20 << 20;
    if (s->o.max_tokens <= 0) s->o.max_tokens = 256;
    s->created = (long)time(NULL);
    // Names and directories.
    if (o->model_name) s->model_name = t2_strdup(o->model_name);
    else {
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", t2_vlm_dir(m));
        size_t l = strlen(buf);
        while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
        const char *b = strrchr(buf, '/');
        s->model_name = t2_strdup(b ? b + 1 : buf);
    }
    if (o->www_dir) {
        if (!(s->www_dir = realpath(o->www_dir, NULL)) || !t2_is_dir(s->www_dir)) {
            t2_fail("--www %s: not a directory", o->www_dir);
            goto fail;
        }
    } else if (!t2_www_embedded()) {
        s->www_dir = t2_www_find_near_exe("server/www");
        if (!s->www_dir) fprintf(stderr, "t2 serve: warning: the page files are not built in and server/www was not found "
                                         "near the program: pass --www DIR (the API works without them)\n");
    }
    if (o->samples_dir) {
        if (!(s->samples_dir = realpath(o->samples_dir, NULL)) || !t2_is_dir(s->samples_dir)) {
            t2_fail("--samples %s: not a directory", o->samples_dir);
            goto fail;
        }
    } else {
        s->samples_dir = t2_www_find_near_exe("samples");
    }
    if (o->media_dir) {
        if (!(s->media_dir = realpath(o->media_dir, NULL)) || !t2_is_dir(s->media_dir)) {
            t2_fail("--media-dir %s: not a directory", o->media_dir);
            goto fail;
        }
    }
    s->engine = t2_srv_engine_new(m, s->o.slots, s->o.queue, s->o.n_ctx, s->o.tmpl);
    if (!s->engine) goto fail;

    // The address.
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    int gai = getaddrinfo(s->o.host, port, &hints, &ai);
    if (gai) { t2_fail("--host %s: %s", s->o.host, gai_strerror(gai)); goto fail; }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned limit = (unsigned)(s->o.slots + s->o.queue + 64);
    s->d = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, handle, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) { t2_fail("cannot listen on %s:%d (address in use, or not an address of this machine)", s->o.host, s->o.port); goto fail; }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return s;
fail:
    release(s);
    return NULL;
}

int t2_server_port(const t2_server *s) { return s->port; }

void t2_server_stop(t2_server *s, double drain_s) {
    if (!s) return;
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELAXED);
    t2_srv_engine_drain(s->engine, 0);
    MHD_socket ls = MHD_quiesce_daemon(s->d);   // no new connections; the listening socket is ours now
    if (ls != MHD_INVALID_SOCKET) close(ls);
    double t0 = t2_now();
    int active, waiting, slots, queue;
    for (;;) {
        t2_srv_engine_load(s->engine, &active, &waiting, &slots, &queue);
        if (active == 0 && waiting == 0) break;
        double t = t2_now() - t0;
        if (t > drain_s) t2_srv_engine_drain(s->engine, 1);   // cut running answers short
        if (t > drain_s + 2) break;                           // a client that does not read: closed below
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    s->d = NULL;
    release(s);
}
