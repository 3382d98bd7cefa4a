// api.c — reading an OpenAI chat-completions request (see api.h). Every check names the field at
// fault, in the JSON-path style OpenAI's own errors use ("messages[0].content[1].image_url.url").
// Not here: rendering the template and running the model (engine.c), HTTP (http.c).
#include "server/api.h"
#include "core/error.h"
#include "core/util.h"
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int t2_srv_fail(t2_srv_error *e, int status, const char *type, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

char *t2_srv_error_json(const t2_srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    char *msg = t2_utf8_sanitize(e->message, strlen(e->message));
    cJSON_AddStringToObject(err, "message", msg);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "server_error");
    if (e->code) cJSON_AddStringToObject(err, "code", e->code);
    else cJSON_AddNullToObject(err, "code");
    free(msg);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

#define BAD(e, code, ...) t2_srv_fail(e, 400, "invalid_request_error", code, __VA_ARGS__)

// ---- base64 (RFC 4648 §4) ----

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int t2_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, char *err, size_t cap) {
    *out = NULL;
    *out_len = 0;
    if (n == 0) { snprintf(err, cap, "empty base64 data"); return -1; }
    if (n % 4) { snprintf(err, cap, "base64 length %zu is not a multiple of 4", n); return -1; }
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    uint8_t *o = t2_malloc(n / 4 * 3);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            size_t at = i + (size_t)j;
            if (at >= n - pad) { v[j] = 0; continue; }
            v[j] = b64_value((unsigned char)s[at]);
            if (v[j] < 0) {
                unsigned char c = (unsigned char)s[at];
                if (c >= 0x21 && c < 0x7f) snprintf(err, cap, "invalid base64 character '%c' at offset %zu", c, at);
                else snprintf(err, cap, "invalid base64 byte 0x%02x at offset %zu", c, at);
                free(o);
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[k++] = (uint8_t)(w >> 16);
        if (i + 4 < n || pad < 2) o[k++] = (uint8_t)(w >> 8);
        if (i + 4 < n || pad < 1) o[k++] = (uint8_t)w;
        if (i + 4 >= n && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))) {
            snprintf(err, cap, "base64 padding hides non-zero bits at offset %zu", n - pad - 1);
            free(o);
            return -1;
        }
    }
    *out = o;
    *out_len = k;
    return 0;
}

// ---- local media ----

char *t2_srv_media_path(const char *dir, const char *name, char *err, size_t cap) {
    if (!strncmp(name, "file://", 7)) name += 7;
    else if (!strncmp(name, "file:", 5)) name += 5;
    if (!*name) { snprintf(err, cap, "empty file path"); return NULL; }
    // ".." is refused as a component, whatever it would resolve to.
    for (const char *p = name; *p;) {
        const char *q = strchr(p, '/');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.') { snprintf(err, cap, "path '%s' contains '..': refused", name); return NULL; }
        p += l + (q != NULL);
    }
    char *root = realpath(dir, NULL);
    if (!root) { snprintf(err, cap, "the media directory is not available"); return NULL; }
    char joined[PATH_MAX];
    if (name[0] == '/') snprintf(joined, sizeof joined, "%s", name);
    else if (t2_path_join(joined, sizeof joined, root, name)) { free(root); snprintf(err, cap, "path too long"); return NULL; }
    char *real = realpath(joined, NULL);
    if (!real) { free(root); snprintf(err, cap, "'%s' not found in the media directory", name); return NULL; }
    size_t rl = strlen(root);
    int inside = !strncmp(real, root, rl) && (real[rl] == '/' || (rl == 1 && root[0] == '/'));
    free(root);
    if (!inside) { free(real); snprintf(err, cap, "'%s' is outside the media directory: refused", name); return NULL; }
    struct stat sb;
    if (stat(real, &sb) || !S_ISREG(sb.st_mode)) { free(real); snprintf(err, cap, "'%s' is not a regular file", name); return NULL; }
    return real;
}

// ---- the request ----

static int load_image_url(const char *url, const char *field, const t2_srv_parse_opts *o, t2_image *im, t2_srv_error *e) {
    char err[256];
    size_t maxpx = o->max_pixels ? o->max_pixels : T2_SRV_MAX_PIXELS;
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ',');
        if (!comma) return BAD(e, "invalid_image_url", "%s: a data: URI needs a ',' before its data", field);
        size_t hl = (size_t)(comma - url);
        if (hl < 7 || strncmp(comma - 7, ";base64", 7))
            return BAD(e, "invalid_image_url", "%s: only base64 data: URIs are accepted (data:image/png;base64,...)", field);
        if (strncmp(url + 5, "image/", 6))
            return BAD(e, "invalid_image_url", "%s: the data: URI's media type must be image/* (PNG or JPEG)", field);
        uint8_t *bytes;
        size_t nb;
        if (t2_base64_decode(comma + 1, strlen(comma + 1), &bytes, &nb, err, sizeof err))
            return BAD(e, "invalid_base64", "%s: %s", field, err);
        int rc = t2_image_load_mem(bytes, nb, field, im, maxpx);
        free(bytes);
        if (rc) return BAD(e, "invalid_image", "%s", t2_last_error());
        return 0;
    }
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return BAD(e, "invalid_image_url", "%s: remote image URLs are not fetched; send the image as a data: URI", field);
    if (!o->media_dir)
        return BAD(e, "invalid_image_url", "%s: local image paths are refused (start t2 serve with --media-dir DIR to allow them); send a data: URI", field);
    char *path = t2_srv_media_path(o->media_dir, url, err, sizeof err);
    if (!path) return BAD(e, "invalid_image_url", "%s: %s", field, err);
    int rc = t2_image_load(path, im, maxpx);
    free(path);
    if (rc) return BAD(e, "invalid_image", "%s: %s", field, t2_last_error());
    return 0;
}

// Appends S to the growing message text *BUF.
static void append(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t l = strlen(s);
    if (*len + l + 1 > *cap) {
        *cap = (*len + l + 1) * 2;
        *buf = t2_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, l + 1);
    *len += l;
}

static int check_text(const char *s, const char *field, t2_srv_error *e) {
    if (strstr(s, "<image>"))
        return BAD(e, "invalid_value", "%s: the text may not contain '<image>' (send images as image_url parts)", field);
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = t2_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k) return BAD(e, "invalid_value", "%s: invalid UTF-8 at byte %zu", field, i);
        i += k;
    }
    return 0;
}

static int parse_message(const cJSON *m, int i, const t2_srv_parse_opts *o, t2_srv_request *rq, t2_srv_error *e) {
    char field[96];
    if (!cJSON_IsObject(m)) return BAD(e, "invalid_type", "messages[%d]: expected an object", i);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role)) return BAD(e, "invalid_type", "messages[%d].role: expected a string", i);
    const char *r = role->valuestring;   // replaced by a static literal: cJSON's string dies with it
    if (!strcmp(r, "system") || !strcmp(r, "developer")) r = "system";
    else if (!strcmp(r, "user")) r = "user";
    else if (!strcmp(r, "assistant")) r = "assistant";
    else return BAD(e, "invalid_value", "messages[%d].role: '%s' is not one of system, user, assistant", i, role->valuestring);
    if (!strcmp(r, "system") && i != 0) return BAD(e, "invalid_value", "messages[%d]: a system message must come first", i);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "");
    if (cJSON_IsString(content)) {
        snprintf(field, sizeof field, "messages[%d].content", i);
        if (check_text(content->valuestring, field, e)) { free(buf); return -1; }
        append(&buf, &len, &cap, content->valuestring);
    } else if (cJSON_IsArray(content)) {
        int j = 0, images_before = rq->n_images;
        for (const cJSON *part = content->child; part; part = part->next, j++) {
            snprintf(field, sizeof field, "messages[%d].content[%d]", i, j);
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
                free(buf);
                return BAD(e, "invalid_type", "%s: expected an object with a string 'type'", field);
            }
            if (!strcmp(type->valuestring, "text")) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(t)) { free(buf); return BAD(e, "invalid_type", "%s.text: expected a string", field); }
                strcat(field, ".text");
                if (check_text(t->valuestring, field, e)) { free(buf); return -1; }
                append(&buf, &len, &cap, t->valuestring);
            } else if (!strcmp(type->valuestring, "image_url")) {
                const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
                const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
                strcat(field, ".image_url");
                if (cJSON_IsObject(iu)) strcat(field, ".url");
                if (!cJSON_IsString(url)) { free(buf); return BAD(e, "invalid_type", "%s: expected a string URL", field); }
                if (strcmp(r, "user")) { free(buf); return BAD(e, "invalid_value", "%s: images are accepted in user messages only", field); }
                if (!o->has_vision) { free(buf); return BAD(e, "model_not_multimodal", "%s: this model has no vision tower: it cannot take images", field); }
                if (rq->n_images == T2_SRV_MAX_IMAGES) { free(buf); return BAD(e, "too_many_images", "%s: at most %d images per request", field, T2_SRV_MAX_IMAGES); }
                if (load_image_url(url->valuestring, field, o, &rq->images[rq->n_images], e)) { free(buf); return -1; }
                rq->n_images++;
                append(&buf, &len, &cap, "<image>\n");
            } else {
                free(buf);
                return BAD(e, "invalid_value", "%s.type: '%s' is not supported (text, image_url)", field, type->valuestring);
            }
        }
        int markers = 0;   // text parts are joined as they are: '<ima' + 'ge>' would make a marker
        for (const char *q = strstr(buf, "<image>"); q; q = strstr(q + 1, "<image>")) markers++;
        if (markers != rq->n_images - images_before) {
            free(buf);
            return BAD(e, "invalid_value", "messages[%d].content: the text parts joined contain '<image>' (send images as "
                                           "image_url parts)", i);
        }
    } else if (!(cJSON_IsNull(content) && !strcmp(r, "assistant"))) {
        free(buf);
        return BAD(e, "invalid_type", "messages[%d].content: expected a string or an array of content parts", i);
    }
    rq->msgs[rq->n_msgs++] = (t2_chat_msg){r, buf};
    return 0;
}

// Fetches optional number KEY into *V within [lo, hi]; 1 if present, 0 if absent, -1 on error.
static int get_num(const cJSON *root, const char *key, double lo, double hi, int integer, double *v, t2_srv_error *e) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsNumber(x)) return BAD(e, "invalid_type", "%s: expected a number", key);
    double d = x->valuedouble;
    if (integer && d != floor(d)) return BAD(e, "invalid_type", "%s: expected an integer, got %g", key, d);
    if (!(d >= lo && d <= hi)) return BAD(e, "invalid_value", "%s: %.10g is out of range [%.10g, %.10g]", key, d, lo, hi);
    *v = d;
    return 1;
}

int t2_srv_request_parse(const char *body, size_t len, const t2_srv_parse_opts *o, t2_srv_request *rq, t2_srv_error *e) {
    memset(rq, 0, sizeof *rq);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return BAD(e, "invalid_json", "the request body is not valid JSON (error near byte %zu)", at);
    }
    while (end && (size_t)(end - body) < len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) end++;
    if (end && (size_t)(end - body) < len) {
        cJSON_Delete(root);
        return BAD(e, "invalid_json", "the request body has trailing data after the JSON value (byte %zu)", (size_t)(end - body));
    }
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return BAD(e, "invalid_json", "the request body must be a JSON object"); }
    int rc = -1;
    double v;
    rq->sp = t2_sampler_defaults();
    rq->sp.temperature = 0.0f;
    rq->sp.top_k = 40;
    rq->sp.top_p = 0.95f;
    rq->sp.min_p = 0.05f;
    rq->sp.repeat_penalty = 1.0f;
    rq->sp.repeat_last_n = 64;
    static uint64_t seed_counter;
    rq->sp.seed = (uint64_t)time(NULL) * 1000003u + __atomic_add_fetch(&seed_counter, 1, __ATOMIC_RELAXED);
    rq->max_tokens = o->max_tokens_default > 0 ? o->max_tokens_default : 256;
    snprintf(rq->adapt, sizeof rq->adapt, "none");

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) { BAD(e, "invalid_type", "model: expected a string"); goto out; }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) { BAD(e, "missing_field", "messages: required"); goto out; }
    if (!cJSON_IsArray(msgs)) { BAD(e, "invalid_type", "messages: expected an array"); goto out; }
    int nm = cJSON_GetArraySize(msgs);
    if (nm == 0) { BAD(e, "invalid_value", "messages: must not be empty"); goto out; }
    if (nm > T2_SRV_MAX_MESSAGES) { BAD(e, "invalid_value", "messages: at most %d messages", T2_SRV_MAX_MESSAGES); goto out; }
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++)
        if (parse_message(m, i, o, rq, e)) goto out;

    int g;
    if ((g = get_num(root, "temperature", 0, 2, 0, &v, e)) < 0) goto out;
    if (g) rq->sp.temperature = (float)v;
    if ((g = get_num(root, "top_p", 0, 1, 0, &v, e)) < 0) goto out;
    if (g) {
        if (v == 0) { BAD(e, "invalid_value", "top_p: must be greater than 0"); goto out; }
        rq->sp.top_p = (float)v;
    }
    if ((g = get_num(root, "top_k", 0, 1 << 30, 1, &v, e)) < 0) goto out;
    if (g) rq->sp.top_k = (int)v;
    if ((g = get_num(root, "min_p", 0, 1, 0, &v, e)) < 0) goto out;
    if (g) rq->sp.min_p = (float)v;
    if ((g = get_num(root, "seed", 0, 9007199254740992.0, 1, &v, e)) < 0) goto out;
    if (g) rq->sp.seed = (uint64_t)v;
    if ((g = get_num(root, "max_tokens", 1, 1 << 20, 1, &v, e)) < 0) goto out;
    if (g) rq->max_tokens = (int)v;
    if ((g = get_num(root, "max_completion_tokens", 1, 1 << 20, 1, &v, e)) < 0) goto out;
    if (g) rq->max_tokens = (int)v;
    if ((g = get_num(root, "n", 1, 1, 1, &v, e)) < 0) { snprintf(e->message, sizeof e->message, "n: only n = 1 is supported"); goto out; }
    if (get_num(root, "presence_penalty", -2, 2, 0, &v, e) < 0) goto out;    // accepted, not applied
    if (get_num(root, "frequency_penalty", -2, 2, 0, &v, e) < 0) goto out;   // accepted, not applied

    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsNull(stream)) {
        if (!cJSON_IsBool(stream)) { BAD(e, "invalid_type", "stream: expected true or false"); goto out; }
        rq->stream = cJSON_IsTrue(stream);
    }
    const cJSON *ie = cJSON_GetObjectItemCaseSensitive(root, "ignore_eos");
    if (ie && !cJSON_IsNull(ie)) {
        if (!cJSON_IsBool(ie)) { BAD(e, "invalid_type", "ignore_eos: expected true or false"); goto out; }
        rq->ignore_eos = cJSON_IsTrue(ie);
    }
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (cJSON_IsString(stop)) {
        if (!*stop->valuestring) { BAD(e, "invalid_value", "stop: must not be empty"); goto out; }
        rq->stops[rq->n_stops++] = t2_strdup(stop->valuestring);
    } else if (cJSON_IsArray(stop)) {
        int k = 0;
        for (const cJSON *s = stop->child; s; s = s->next, k++) {
            if (!cJSON_IsString(s) || !*s->valuestring) { BAD(e, "invalid_type", "stop[%d]: expected a non-empty string", k); goto out; }
            if (rq->n_stops == T2_SRV_MAX_STOPS) { BAD(e, "invalid_value", "stop: at most %d strings", T2_SRV_MAX_STOPS); goto out; }
            rq->stops[rq->n_stops++] = t2_strdup(s->valuestring);
        }
    } else if (stop && !cJSON_IsNull(stop)) {
        BAD(e, "invalid_type", "stop: expected a string or an array of strings");
        goto out;
    }
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(root, "t2");
    if (ext && !cJSON_IsNull(ext)) {
        if (!cJSON_IsObject(ext)) { BAD(e, "invalid_type", "t2: expected an object"); goto out; }
        const cJSON *ad = cJSON_GetObjectItemCaseSensitive(ext, "adapt");
        if (ad && !cJSON_IsNull(ad)) {
            if (!cJSON_IsString(ad)) { BAD(e, "invalid_type", "t2.adapt: expected a string"); goto out; }
            if (strlen(ad->valuestring) >= sizeof rq->adapt) { BAD(e, "invalid_value", "t2.adapt: too long"); goto out; }
            snprintf(rq->adapt, sizeof rq->adapt, "%s", ad->valuestring);
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) t2_srv_request_free(rq);
    return rc;
}

void t2_srv_request_free(t2_srv_request *rq) {
    for (int i = 0; i < rq->n_msgs; i++) free((char *)rq->msgs[i].content);
    for (int k = 0; k < rq->n_images; k++) t2_image_free(&rq->images[k]);
    for (int k = 0; k < rq->n_stops; k++) free(rq->stops[k]);
    memset(rq, 0, sizeof *rq);
}

void t2_srv_printable(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (const unsigned char *u = (const unsigned char *)in; *u && k + 5 < cap; u++) {
        if (*u < 0x20 || *u == 0x7f) k += (size_t)snprintf(out + k, cap - k, "\\x%02x", *u);
        else out[k++] = (char)*u;
    }
    out[k] = 0;
}

// ---- adaptation ----

int t2_srv_adapt_choose_with(t2_dispatcher *d, const char *strategy, const char *question, const t2_image_rows *images,
                             int n, t2_srv_adapt *out, t2_adapt_choice *choice, t2_srv_error *e) {
    memset(out, 0, sizeof *out);
    snprintf(out->strategy, sizeof out->strategy, "none");
    t2_adapt_choice local;
    if (!choice) choice = &local;
    memset(choice, 0, sizeof *choice);
    if (!strategy || !*strategy || !strcmp(strategy, "none")) {
        if (d && t2_dispatcher_apply(d, choice)) return t2_srv_fail(e, 500, "server_error", "adapt_failed", "%s", t2_last_error());
        return 0;
    }
    if (!d) return BAD(e, "adapt_unavailable", "adaptation strategy '%s' is not available: this model has no experts", strategy);
    t2_adapt_spec spec;
    if (t2_adapt_parse(strategy, &spec)) return BAD(e, "invalid_adapt", "t2.adapt: %s", t2_last_error());
    if (t2_dispatcher_choose_as(d, &spec, question ? question : "", images, n, choice)) {
        const char *msg = t2_last_error();
        if (strstr(msg, "not available") || strstr(msg, "no expert named") || strstr(msg, "few-shot") || strstr(msg, "mixtures"))
            return BAD(e, "adapt_unavailable", "%s", msg);
        if (strstr(msg, "is not finite")) return BAD(e, "invalid_adapt", "t2.adapt: %s", msg);
        return t2_srv_fail(e, 500, "server_error", "adapt_failed", "%s", msg);
    }
    snprintf(out->strategy, sizeof out->strategy, "%.63s", spec.text);
    snprintf(out->expert, sizeof out->expert, "%s", choice->expert);
    out->n_mix = choice->n_mix < T2_SRV_MAX_MIX ? choice->n_mix : T2_SRV_MAX_MIX;
    for (int k = 0; k < out->n_mix; k++) {
        snprintf(out->mix_names[k], sizeof out->mix_names[k], "%s", choice->mix_names[k]);
        out->mix_weights[k] = choice->mix_alpha[k];
    }
    out->first_pass_ms = choice->first_pass_s * 1e3;
    snprintf(out->note, sizeof out->note, "%s", choice->note);
    return 0;
}

int t2_srv_adapt_choose(const char *strategy, t2_srv_adapt *out, t2_srv_error *e) {
    return t2_srv_adapt_choose_with(NULL, strategy, NULL, NULL, 0, out, NULL, e);
}

void t2_srv_adapt_json(struct cJSON *obj, const t2_srv_adapt *a, double second_pass_ms) {
    cJSON_AddStringToObject(obj, "adapt", a->strategy);
    if (a->expert[0]) cJSON_AddStringToObject(obj, "expert", a->expert);
    else cJSON_AddNullToObject(obj, "expert");
    if (a->n_mix > 0) {
        cJSON *mix = cJSON_AddObjectToObject(obj, "mixture");
        for (int k = 0; k < a->n_mix; k++) cJSON_AddNumberToObject(mix, a->mix_names[k], a->mix_weights[k]);
    }
    cJSON_AddNumberToObject(obj, "first_pass_ms", round(a->first_pass_ms * 100) / 100);
    if (a->note[0]) cJSON_AddStringToObject(obj, "first_pass_note", a->note);
    cJSON_AddNumberToObject(obj, "second_pass_ms", round(second_pass_ms * 100) / 100);
}
