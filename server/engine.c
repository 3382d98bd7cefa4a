// engine.c — slots, the wait queue and the answering loop of the server (see engine.h).
//
// One model is loaded once; each slot owns only what a sequence needs (t2_lm_state: its KV cache and
// activations, and a logits row), so N slots share the mmap'd weights. The model's thread pool is one
// (t2_pool_run is not re-entrant), so compute is serialised by a FIFO ticket lock taken per unit of
// work — an image encode, a prefill block of PREFILL_BLOCK positions, one decode token — which lets
// active slots interleave token by token: N streams advance together, each at ~1/N of the single-
// stream speed, and every step still uses all the pool's threads. (Batched decode across slots with
// t2_lm_forward_batch is the next step for throughput; the job API does not change for it.)
#include "server/engine.h"
#include "core/error.h"
#include "core/util.h"
#include "experts/registry.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFILL_BLOCK 128
#define ALIVE_EVERY 8          // decode steps between checks that the client is still there
#define QUEUE_POLL_MS 200

typedef struct {
    t2_lm_state *st;
    float *logits;   // (vocab)
    int busy;
} slot;

struct t2_srv_engine {
    t2_vlm *m;
    t2_chat_kind kind;
    t2_dispatcher *dsp;              // the model's experts (NULL: none); its weights are switched per
                                     // slot under the compute lock (cached: a pointer swap)
    int n_slots, queue_cap, n_ctx;
    int test_delay_ms;               // T2_SERVE_TEST_DELAY_MS: a pause per token, for the tests only
    slot *slots;
    pthread_mutex_t mu;              // guards the fields below
    pthread_cond_t freed;            // a slot was released, or the engine drains
    int active, waiting, draining, cancel;
    int admitted;   // requests being parsed (their images decoded) before they wait for a slot
    pthread_mutex_t compute_mu;      // FIFO ticket lock around model compute
    pthread_cond_t compute_cv;
    unsigned long ticket_next, ticket_serving;
};

struct t2_srv_job {
    t2_srv_engine *e;
    int slot;
    t2_srv_request rq;
    t2_srv_adapt adapt;
    t2_adapt_choice choice;          // re-applied before each unit of this job's compute
    t2_sampler *smp;
    t2_gen_params gp;
    t2_gen g;
    t2_gen_result res;
    int begun, over, have_next, steps, n_prompt, n_image_tokens;
    int32_t next;
    char *pend;                      // text released by the last step (sanitised)
    size_t pend_len, pend_cap;
    char *all;                       // the whole answer so far (sanitised)
    size_t all_len, all_cap;
    const char *finish;
    char error[256];
    t2_srv_alive_fn alive;
    void *alive_ctx;
    double t_queue, t_encode, t_prefill, t_decode, t_start;
};

// Takes the compute lock for job J (NULL: no weights needed) and puts J's adapted weights on the model.
static void compute_lock(t2_srv_engine *e);
static int compute_lock_for(t2_srv_engine *e, const t2_srv_job *j);

static void compute_lock(t2_srv_engine *e) {
    pthread_mutex_lock(&e->compute_mu);
    unsigned long me = e->ticket_next++;
    while (e->ticket_serving != me) pthread_cond_wait(&e->compute_cv, &e->compute_mu);
    pthread_mutex_unlock(&e->compute_mu);
}

static void compute_unlock(t2_srv_engine *e) {
    pthread_mutex_lock(&e->compute_mu);
    e->ticket_serving++;
    pthread_cond_broadcast(&e->compute_cv);
    pthread_mutex_unlock(&e->compute_mu);
}

static int compute_lock_for(t2_srv_engine *e, const t2_srv_job *j) {
    compute_lock(e);
    return e->dsp ? t2_dispatcher_apply(e->dsp, &j->choice) : 0;
}

// The text of the request's last user message without its "<image>" markers (malloc'd).
static char *last_user_text(const t2_srv_request *rq) {
    const char *c = "";
    for (int i = 0; i < rq->n_msgs; i++) if (!strcmp(rq->msgs[i].role, "user") && rq->msgs[i].content) c = rq->msgs[i].content;
    char *out = t2_malloc(strlen(c) + 1), *o = out;
    while (*c) {
        if (!strncmp(c, "<image>\n", 8)) { c += 8; continue; }
        if (!strncmp(c, "<image>", 7)) { c += 7; continue; }
        *o++ = *c++;
    }
    *o = 0;
    return out;
}

t2_srv_engine *t2_srv_engine_new(t2_vlm *m, int slots, int queue, int n_ctx, const char *tmpl) {
    T2_ASSERT(slots >= 1 && queue >= 0);
    if (!t2_vlm_tok(m)) return t2_fail_null("%s has no tokenizer: the server needs one", t2_vlm_dir(m));
    t2_chat_kind kind;
    if (tmpl && !strcmp(tmpl, "none")) kind = T2_CHAT_NONE;
    else if (t2_vlm_chat_kind(m, tmpl, &kind)) {
        if (tmpl) return NULL;
        fprintf(stderr, "t2 serve: %s: messages are joined as plain text\n", t2_last_error());
        kind = T2_CHAT_NONE;
    }
    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    if (n_ctx <= 0) n_ctx = cfg->max_position < 4096 ? cfg->max_position : 4096;
    if (n_ctx > cfg->max_position)
        return t2_fail_null("context %d exceeds the model's max_position_embeddings %d", n_ctx, cfg->max_position);
    t2_srv_engine *e = t2_calloc(1, sizeof *e);
    e->m = m;
    e->kind = kind;
    e->n_slots = slots;
    e->queue_cap = queue;
    e->n_ctx = n_ctx;
    e->slots = t2_calloc((size_t)slots, sizeof(slot));
    for (int i = 0; i < slots; i++) {
        e->slots[i].st = t2_lm_state_new(t2_vlm_lm(m), n_ctx, PREFILL_BLOCK);
        if (!e->slots[i].st) { t2_srv_engine_free(e); return NULL; }
        e->slots[i].logits = t2_malloc(sizeof(float) * (size_t)cfg->vocab_size);
    }
    char reg[4096];   // experts: the registry beside the model, if any
    if (t2_registry_default_path(reg, sizeof reg, t2_vlm_dir(m)) == 0 && t2_file_exists(reg)) {
        t2_adapt_spec spec;
        t2_adapt_parse("prompt", &spec);
        t2_dispatch_opts dop = t2_dispatch_defaults();
        dop.chat = kind;
        dop.cache_slots = slots + 2;   // each slot's choice stays cached
        if (!(e->dsp = t2_dispatcher_new(m, &spec, &dop)))
            fprintf(stderr, "t2 serve: experts unavailable: %s\n", t2_last_error());
    }
    const char *delay = getenv("T2_SERVE_TEST_DELAY_MS");
    if (delay) e->test_delay_ms = atoi(delay);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->freed, NULL);
    pthread_mutex_init(&e->compute_mu, NULL);
    pthread_cond_init(&e->compute_cv, NULL);
    return e;
}

void t2_srv_engine_free(t2_srv_engine *e) {
    if (!e) return;
    t2_dispatcher_free(e->dsp);
    for (int i = 0; i < e->n_slots; i++) {
        t2_lm_state_free(e->slots[i].st);
        free(e->slots[i].logits);
    }
    free(e->slots);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->freed);
    pthread_mutex_destroy(&e->compute_mu);
    pthread_cond_destroy(&e->compute_cv);
    free(e);
}

void t2_srv_engine_drain(t2_srv_engine *e, int cancel) {
    pthread_mutex_lock(&e->mu);
    e->draining = 1;
    if (cancel) e->cancel = 1;
    pthread_cond_broadcast(&e->freed);
    pthread_mutex_unlock(&e->mu);
}

void t2_srv_engine_load(t2_srv_engine *e, int *active, int *waiting, int *slots, int *queue) {
    pthread_mutex_lock(&e->mu);
    *active = e->active;
    *waiting = e->waiting;
    pthread_mutex_unlock(&e->mu);
    *slots = e->n_slots;
    *queue = e->queue_cap;
}

const char *t2_srv_engine_template(const t2_srv_engine *e) { return t2_chat_name(e->kind); }
int t2_srv_engine_ctx(const t2_srv_engine *e) { return e->n_ctx; }

int t2_srv_engine_experts(t2_srv_engine *e, const char **names, int cap, int *classifier) {
    t2_registry *r = e->dsp ? t2_dispatcher_registry(e->dsp) : NULL;
    int n = 0;
    if (classifier) *classifier = r && t2_registry_classifier(r) >= 0;
    for (int i = 0; r && i < t2_registry_count(r) && n < cap; i++)
        if (t2_registry_at(r, i)->label[0]) names[n++] = t2_registry_at(r, i)->name;
    return n;
}

int t2_srv_engine_admit(t2_srv_engine *e, t2_srv_error *err) {
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    if (e->draining) rc = t2_srv_fail(err, 503, "server_error", "shutting_down", "the server is shutting down");
    else if (e->active + e->waiting + e->admitted >= e->n_slots + e->queue_cap)
        rc = t2_srv_fail(err, 503, "server_error", "server_busy",
                         "the server is busy (%d slots answering, %d requests waiting, %d arriving): retry later", e->active,
                         e->waiting, e->admitted);
    else e->admitted++;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void t2_srv_engine_unadmit(t2_srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    if (e->admitted > 0) e->admitted--;
    pthread_mutex_unlock(&e->mu);
}

// Waits for a free slot; its index, or -1 with ERR (status 0 when the client left).
static int acquire(t2_srv_engine *e, t2_srv_alive_fn alive, void *actx, t2_srv_error *err) {
    pthread_mutex_lock(&e->mu);
    if (e->draining) {
        pthread_mutex_unlock(&e->mu);
        return t2_srv_fail(err, 503, "server_error", "shutting_down", "the server is shutting down");
    }
    if (e->active == e->n_slots && e->waiting >= e->queue_cap) {
        pthread_mutex_unlock(&e->mu);
        return t2_srv_fail(err, 503, "server_error", "server_busy",
                           "the server is busy (%d slots answering, %d requests waiting): retry later", e->n_slots, e->waiting);
    }
    e->waiting++;
    int gone = 0;
    while (e->active == e->n_slots && !e->draining) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += QUEUE_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int rc = pthread_cond_timedwait(&e->freed, &e->mu, &ts);
        if (rc == ETIMEDOUT && alive) {
            pthread_mutex_unlock(&e->mu);
            gone = !alive(actx);
            pthread_mutex_lock(&e->mu);
            if (gone) break;
        }
    }
    e->waiting--;
    if (gone || e->draining) {
        pthread_cond_broadcast(&e->freed);   // another waiter may take the turn this one had
        pthread_mutex_unlock(&e->mu);
        if (gone) return t2_srv_fail(err, 0, "server_error", "client_gone", "the client left while waiting");
        return t2_srv_fail(err, 503, "server_error", "shutting_down", "the server is shutting down");
    }
    int s = 0;
    while (e->slots[s].busy) s++;
    e->slots[s].busy = 1;
    e->active++;
    pthread_mutex_unlock(&e->mu);
    return s;
}

static void release(t2_srv_engine *e, int s) {
    pthread_mutex_lock(&e->mu);
    e->slots[s].busy = 0;
    e->active--;
    pthread_cond_broadcast(&e->freed);
    pthread_mutex_unlock(&e->mu);
}

static void grow_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2 + 256;
        *buf = t2_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

// t2_gen's on_text: collect the released text, invalid UTF-8 replaced (JSON must be valid UTF-8).
static int on_text(void *ctx, const char *text, size_t len) {
    t2_srv_job *j = ctx;
    char *clean = t2_utf8_sanitize(text, len);
    size_t n = strlen(clean);
    grow_append(&j->pend, &j->pend_len, &j->pend_cap, clean, n);
    grow_append(&j->all, &j->all_len, &j->all_cap, clean, n);
    free(clean);
    return 0;
}

// Ends a job that failed before answering: ERR from the library's last error; NULL.
static t2_srv_job *job_fail(t2_srv_job *j, t2_srv_error *err, int status, const char *code) {
    t2_srv_fail(err, status, status >= 500 ? "server_error" : "invalid_request_error", code, "%s", t2_last_error());
    t2_srv_job_free(j);
    return NULL;
}

t2_srv_job *t2_srv_job_start(t2_srv_engine *e, t2_srv_request *rq, t2_srv_alive_fn alive, void *alive_ctx,
                             t2_srv_error *err) {
    t2_srv_job *j = t2_calloc(1, sizeof *j);
    j->e = e;
    j->rq = *rq;
    memset(rq, 0, sizeof *rq);
    j->alive = alive;
    j->alive_ctx = alive_ctx;
    j->slot = -1;
    double t0 = t2_now();
    if ((j->slot = acquire(e, alive, alive_ctx, err)) < 0) { t2_srv_job_free(j); return NULL; }
    j->t_start = t2_now();
    j->t_queue = j->t_start - t0;
    t2_vlm *m = e->m;
    slot *s = &e->slots[j->slot];
    const t2_lm_config *cfg = t2_vlm_lm_cfg(m);
    char *text = t2_chat_render(e->kind, j->rq.msgs, j->rq.n_msgs, t2_tok_bos_text(t2_vlm_tok(m)));
    if (!text) return job_fail(j, err, 400, "invalid_messages");

    // Pass 2: images → rows, the prompt, prefill.
    int ni = j->rq.n_images;
    t2_image_rows rows[T2_SRV_MAX_IMAGES];
    t2_prompt p;
    memset(&p, 0, sizeof p);
    compute_lock(e);
    double t1 = t2_now();
    int rc = t2_vlm_encode_images(m, j->rq.images, ni, rows);
    j->t_encode = t2_now() - t1;
    // Pass 1: adaptation (dispatch), on the last user message and the request's images, before
    // anything is computed for the answer.
    if (!rc) {
        char *question = last_user_text(&j->rq);
        int bad = t2_srv_adapt_choose_with(e->dsp, j->rq.adapt, question, rows, ni, &j->adapt, &j->choice, err);
        free(question);
        if (bad) {
            compute_unlock(e);
            for (int k = 0; k < ni; k++) free(rows[k].rows);
            free(text);
            t2_srv_job_free(j);
            return NULL;
        }
        rc = t2_vlm_prompt_text(m, text, 0, rows, ni, &p);
        for (int k = 0; k < ni; k++) free(rows[k].rows);
    }
    compute_unlock(e);
    free(text);
    for (int k = 0; k < ni; k++) t2_image_free(&j->rq.images[k]);
    j->rq.n_images = 0;
    if (rc) return job_fail(j, err, 400, "invalid_prompt");
    if (p.n == 0) {
        t2_prompt_free(&p);
        t2_srv_fail(err, 400, "invalid_request_error", "invalid_prompt", "the prompt is empty");
        t2_srv_job_free(j);
        return NULL;
    }
    if (p.n >= e->n_ctx) {
        t2_srv_fail(err, 400, "invalid_request_error", "context_length_exceeded",
                    "the prompt has %d positions (%d of them image features) but the context is %d", p.n,
                    p.n_image_tokens, e->n_ctx);
        t2_prompt_free(&p);
        t2_srv_job_free(j);
        return NULL;
    }
    j->n_prompt = p.n;
    j->n_image_tokens = p.n_image_tokens;
    t2_lm_state_rewind(s->st, 0);
    t1 = t2_now();
    rc = 0;
    for (int at = 0; at < p.n && !rc; at += PREFILL_BLOCK) {
        int n = p.n - at < PREFILL_BLOCK ? p.n - at : PREFILL_BLOCK;
        rc = compute_lock_for(e, j);
        if (!rc) rc = t2_lm_forward(t2_vlm_lm(m), s->st, p.ids + at, p.embeds ? p.embeds + (size_t)at * cfg->hidden_size : NULL,
                           p.is_embed + at, n, s->logits, 0);
        compute_unlock(e);
    }
    j->t_prefill = t2_now() - t1;
    if (rc) { t2_prompt_free(&p); return job_fail(j, err, 500, "forward_failed"); }

    // The decoding loop, begun; t2_srv_job_step runs it.
    j->gp.n_predict = j->rq.max_tokens < e->n_ctx - p.n ? j->rq.max_tokens : e->n_ctx - p.n;
    for (int k = 0; k < j->rq.n_stops; k++) j->gp.stops[j->gp.n_stops++] = j->rq.stops[k];
    const char *tstop = t2_chat_stop_text(e->kind);
    if (tstop) j->gp.stops[j->gp.n_stops++] = tstop;
    j->gp.ignore_eos = j->rq.ignore_eos;
    j->gp.on_text = on_text;
    j->gp.ctx = j;
    j->smp = t2_sampler_new(cfg->vocab_size, j->rq.sp);
    t2_gen_begin(&j->g, t2_vlm_lm(m), t2_vlm_tok(m), p.ids, p.n, &j->gp);
    j->begun = 1;
    t2_prompt_free(&p);
    grow_append(&j->all, &j->all_len, &j->all_cap, "", 0);
    return j;
}

static void job_over(t2_srv_job *j, const char *finish) {
    if (j->over) return;
    j->over = 1;
    t2_gen_end(&j->g, &j->res);
    j->begun = 0;
    j->finish = finish ? finish : j->res.stop == T2_GEN_STOP_LENGTH ? "length" : "stop";
    j->t_decode = t2_now() - j->t_start - j->t_encode - j->t_prefill;
}

int t2_srv_job_step(t2_srv_job *j, const char **text, size_t *len) {
    t2_srv_engine *e = j->e;
    slot *s = &e->slots[j->slot];
    j->pend_len = 0;
    while (!j->over && j->pend_len == 0) {
        if (e->cancel) { job_over(j, NULL); break; }
        if (j->alive && ++j->steps % ALIVE_EVERY == 0 && !j->alive(j->alive_ctx)) { job_over(j, NULL); break; }
        if (j->have_next) {
            int rc = compute_lock_for(e, j);
            if (!rc) rc = t2_lm_forward(t2_vlm_lm(e->m), s->st, &j->next, NULL, NULL, 1, s->logits, 0);
            compute_unlock(e);
            j->have_next = 0;
            if (e->test_delay_ms > 0) {
                struct timespec ts = {e->test_delay_ms / 1000, (long)(e->test_delay_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            if (rc) {
                snprintf(j->error, sizeof j->error, "%s", t2_last_error());
                job_over(j, "error");
                break;
            }
        }
        if (t2_gen_step(&j->g, j->smp, s->logits, &j->next)) job_over(j, NULL);
        else j->have_next = 1;
    }
    *text = j->pend ? j->pend : "";
    *len = j->pend_len;
    return j->over;
}

void t2_srv_job_info_get(const t2_srv_job *j, t2_srv_job_info *info) {
    memset(info, 0, sizeof *info);
    info->prompt_tokens = j->n_prompt;
    info->image_tokens = j->n_image_tokens;
    info->completion_tokens = j->over ? j->res.n_gen : j->g.n_gen;
    info->finish_reason = j->finish ? j->finish : "stop";
    info->adapt = j->adapt;
    info->queue_ms = j->t_queue * 1e3;
    info->encode_ms = j->t_encode * 1e3;
    info->prefill_ms = j->t_prefill * 1e3;
    info->decode_ms = j->t_decode * 1e3;
    info->second_pass_ms = (j->over ? j->t_encode + j->t_prefill + j->t_decode : t2_now() - j->t_start) * 1e3;
    snprintf(info->error, sizeof info->error, "%s", j->error);
}

const char *t2_srv_job_text(const t2_srv_job *j, size_t *len) {
    if (len) *len = j->all_len;
    return j->all ? j->all : "";
}

void t2_srv_job_free(t2_srv_job *j) {
    if (!j) return;
    if (j->begun) t2_gen_end(&j->g, &j->res);
    t2_gen_result_free(&j->res);
    if (j->smp) t2_sampler_free(j->smp);
    if (j->slot >= 0) release(j->e, j->slot);
    t2_srv_request_free(&j->rq);
    free(j->pend);
    free(j->all);
    free(j);
}
