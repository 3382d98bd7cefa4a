// engine.h — the model side of the server: N slots over one loaded model, a bounded wait queue in
// front of them, and a job = one chat completion run step by step (so HTTP can stream it). Not here:
// parsing (api.h) and HTTP (http.c).
#ifndef T2_SERVER_ENGINE_H
#define T2_SERVER_ENGINE_H
#include <stddef.h>
#include "fusion/vlm.h"
#include "server/api.h"

typedef struct t2_srv_engine t2_srv_engine;
typedef struct t2_srv_job t2_srv_job;

// Contract: SLOTS sequences over model M (each its own KV cache of N_CTX positions), at most QUEUE
// requests waiting for a slot beyond those. TEMPLATE names the chat template (NULL: recognised from
// the checkpoint). NULL + error.
t2_srv_engine *t2_srv_engine_new(t2_vlm *m, int slots, int queue, int n_ctx, const char *tmpl);
void t2_srv_engine_free(t2_srv_engine *e);
// Contract: refuse new requests from now on (503); CANCEL also ends running answers early.
void t2_srv_engine_drain(t2_srv_engine *e, int cancel);
// Contract: slots in use / requests waiting / total slots / queue capacity.
void t2_srv_engine_load(t2_srv_engine *e, int *active, int *waiting, int *slots, int *queue);
const char *t2_srv_engine_template(const t2_srv_engine *e);
int t2_srv_engine_ctx(const t2_srv_engine *e);
// Contract: the names of the model's dispatched experts (experts/registry.json) into NAMES (up to CAP);
// returns how many (0: the model has no experts). *CLASSIFIER = 1 when the registry has one.
int t2_srv_engine_experts(t2_srv_engine *e, const char **names, int cap, int *classifier);

// Contract: a place for a request that is about to be parsed (its images decoded): 0, or -1 with a
// 503 in ERR when the slots and the queue are taken by requests answering, waiting or being parsed,
// so no more requests than slots + queue hold decoded images at once. Give the place back with
// t2_srv_engine_unadmit once the request is parsed (just before t2_srv_job_start) or refused.
int t2_srv_engine_admit(t2_srv_engine *e, t2_srv_error *err);
void t2_srv_engine_unadmit(t2_srv_engine *e);

// Returns 0 when the client that asked is gone (polled while waiting and generating).
typedef int (*t2_srv_alive_fn)(void *ctx);

// Contract: take RQ (moved: RQ is left empty) and start answering it: wait for a slot (503 when the
// queue is full or the server drains), choose the adaptation (t2_srv_adapt_choose), encode images,
// prefill. NULL + E on failure (E->status 0: the client left while waiting; nothing to answer).
t2_srv_job *t2_srv_job_start(t2_srv_engine *e, t2_srv_request *rq, t2_srv_alive_fn alive, void *alive_ctx,
                             t2_srv_error *err);
// Contract: decode until the next piece of text is final or the answer is over. *TEXT(*LEN) is valid
// until the next call (valid UTF-8; *LEN may be 0 only when the answer is over). Returns 1 when over.
int t2_srv_job_step(t2_srv_job *j, const char **text, size_t *len);

typedef struct {
    int prompt_tokens, image_tokens, completion_tokens;
    const char *finish_reason;   // "stop", "length"; "error" after a failed forward (message in error)
    t2_srv_adapt adapt;
    double encode_ms, prefill_ms, decode_ms, second_pass_ms, queue_ms;
    char error[256];
} t2_srv_job_info;
// Contract: the figures of J so far (complete once t2_srv_job_step returned 1).
void t2_srv_job_info_get(const t2_srv_job *j, t2_srv_job_info *info);
// Contract: the whole answer so far (valid UTF-8, NUL-terminated), owned by J.
const char *t2_srv_job_text(const t2_srv_job *j, size_t *len);
// Contract: release J and its slot (also mid-answer: a client that left).
void t2_srv_job_free(t2_srv_job *j);

#endif
