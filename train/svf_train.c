// svf_train.c — REINFORCE for SVF experts (svf_train.h). One iteration:
//   1. rollouts: the inference model (fusion/vlm.h) with the current expert swapped in answers BATCH
//      training items exactly as `t2 eval` asks them (greedy by default);
//   2. rewards: r = 2·score − 1 from the item's metric (eval/bench.h), i.e. +1 right / −1 wrong;
//      with o->baseline the batch's mean reward is subtracted (not in the official recipe);
//      with o->nll there are no rollouts: the item's first reference answer is the action, r = +1 —
//      next-token prediction of the answer through the same z-gradient (the paper's ablation);
//   3. the policy's log-probabilities of its own answers (and the EOS that ended them) through the
//      f32 training copy of the language model (language/lm_train.h) whose targeted matrices hold
//      W' = U diag(σ'(z)) Vᵀ; d(loss)/d(logits) of loss = Σ_i −r_i Σ_t log π(ŷ_t) / B
//      + λ/B Σ_i Σ_t KL(π_base ‖ π) is fed to the backward, and each z's gradient is read off the
//      targeted layers' inputs and output gradients (svf/svf.h t2_svf_grad_z);
//   4. global-norm clipping and Adam (no weight decay) on the concatenated z.
// Validation every N iterations keeps the best expert (the official recipe's model selection).
#include "train/svf_train.h"
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/kernels.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/util.h"
#include "eval/chart.h"
#include "eval/run.h"
#include "fusion/vlm.h"
#include "language/generate.h"
#include "language/lm_train.h"
#include "svf/svf.h"
#include "train/data.h"

t2_svf_train_opts t2_svf_train_defaults(void) {
    t2_svf_train_opts o;
    memset(&o, 0, sizeof o);
    o.param = T2_SVF_PARAM_OFFICIAL;
    o.iters = 100, o.batch = 32;
    o.lr = 2e-3, o.clip = 1e-3, o.kl = 0;
    o.max_new = 16, o.valid_every = 10;
    o.seed = 1;
    return o;
}

// One answered item: the prompt as the language model takes it, the generated actions, the reward.
typedef struct {
    t2_prompt p;
    int32_t act[64];
    int n_act;
    double score, reward;
} rollout;

typedef struct {
    const t2_svf_train_opts *o;
    t2_vlm *m;
    const t2_tokenizer *tok;
    t2_chat_kind chat;
    t2_svf *svf;
    t2_svf_adapter *ad;
    t2_expert *e;
    t2_lm_train *tr;
    t2_sampler *smp;        // rollouts (o->temperature)
    t2_sampler *greedy;     // validation
    t2_sampler *cur;        // the one roll() uses
    float *logits;          // (V) rollout logits
    float **wptr;           // per svf matrix: its place in the training copy
    float *base;            // the targeted matrices' base weights, back to back (for the KL pass)
    float *scratch, *pbase; // recompose / grad scratch; base probabilities (B*T, V) for the KL
    int max_T;
} ctx;

static int prompt_of(ctx *c, const t2_eval_item *it, t2_prompt *p) {
    t2_eval_opts eo = {0};
    char *text = t2_eval_prompt_text(it, &eo, it->image != NULL, c->chat, t2_tok_bos_text(c->tok));
    int rc = text ? 0 : -1;
    t2_image_rows rows = {0};
    if (rc == 0 && it->image) {
        t2_image im;
        if ((rc = t2_image_load(it->image, &im, T2_IMAGE_MAX_PIXELS)) == 0) {
            rc = t2_vlm_encode_images(c->m, &im, 1, &rows);
            t2_image_free(&im);
        }
    }
    if (rc == 0) rc = t2_vlm_prompt_text(c->m, text, c->chat == T2_CHAT_NONE, it->image ? &rows : NULL, it->image ? 1 : 0, p);
    free(rows.rows), free(text);
    if (rc) return t2_fail("item %s: %s", it->id, t2_last_error());
    return 0;
}

// Answer ITEM with whatever expert is applied; fills R (its prompt kept for the policy pass). With
// TEACHER (o->nll's training batches) the action is the reference answer instead of a generation.
static int roll(ctx *c, const t2_eval_item *it, rollout *r, int teacher) {
    memset(r, 0, sizeof *r);
    if (prompt_of(c, it, &r->p)) return -1;
    if (teacher) {   // the reference answer as t2 train renders it (train/data.h) + the end of the turn
        int n = t2_train_answer_ids(c->tok, c->chat, it->n_answers ? it->answers[0] : "", r->act, 63);
        if (n == -1) return t2_fail("item %s: its answer is over 62 tokens", it->id);
        if (n < 0) return t2_fail("item %s: its answer: %s", it->id, t2_last_error());
        r->n_act = n;
        r->score = 1, r->reward = 1;
        return 0;
    }
    t2_lm *lm = t2_vlm_lm(c->m);
    int max_new = c->o->max_new < 63 ? c->o->max_new : 63;
    t2_lm_state *st = t2_lm_state_new(lm, r->p.n + max_new + 1, 512);
    if (!st) return -1;
    int rc = t2_lm_forward(lm, st, r->p.ids, r->p.embeds, r->p.is_embed, r->p.n, c->logits, 0);
    t2_gen_result res;
    memset(&res, 0, sizeof res);
    if (rc == 0) {
        t2_gen_params gp = {0};
        gp.n_predict = max_new;
        rc = t2_generate(lm, st, c->tok, c->cur, c->logits, r->p.ids, r->p.n, &gp, &res);
    }
    if (rc == 0) {
        for (int k = 0; k < res.n_gen; k++) r->act[r->n_act++] = res.ids[k];
        if (res.stop == T2_GEN_STOP_EOS && t2_tok_eos(c->tok) >= 0) r->act[r->n_act++] = t2_tok_eos(c->tok);
        r->score = t2_eval_score(it, res.text ? res.text : "");
        r->reward = 2 * r->score - 1;
    }
    t2_gen_result_free(&res);
    t2_lm_state_free(st);
    return rc;
}

static void roll_free(rollout *r) { t2_prompt_free(&r->p); }

// The training copy's matrix (LAYER, WHICH).
static float *train_matrix(t2_lm_train *tr, int layer, int which) {
    const t2_lm_config *cf = t2_lm_train_cfg(tr);
    t2_lm_params *p = t2_lm_train_params(tr);
    size_t C = cf->hidden_size, I = cf->intermediate_size, HD = (size_t)cf->n_heads * cf->head_dim,
           KVD = (size_t)cf->n_kv_heads * cf->head_dim;
    switch (which) {
    case T2_LIN_Q: return p->wq + layer * HD * C;
    case T2_LIN_K: return p->wk + layer * KVD * C;
    case T2_LIN_V: return p->wv + layer * KVD * C;
    case T2_LIN_O: return p->wo + layer * C * HD;
    case T2_LIN_GATE: return p->wgate + layer * I * C;
    case T2_LIN_UP: return p->wup + layer * I * C;
    default: return p->wdown + layer * C * I;
    }
}

static void set_weights(ctx *c, int base) {
    size_t off = 0;
    for (int i = 0; i < t2_svf_count(c->svf); i++) {
        const t2_svf_matrix *mx = t2_svf_at(c->svf, i);
        size_t n = (size_t)mx->rows * mx->cols;
        if (base) memcpy(c->wptr[i], c->base + off, sizeof(float) * n);
        else t2_svf_recompose(c->svf, i, c->e->z + mx->offset, c->e->param, c->wptr[i], c->scratch);
        off += n;
    }
}

// Policy-gradient pass over the batch's rollouts: DZ(n) = d(loss)/dz; returns the loss, *KL the mean KL.
static double policy_pass(ctx *c, rollout *R, int B, float *dz, double *kl_out) {
    const t2_lm_config *cf = t2_lm_train_cfg(c->tr);
    int H = cf->hidden_size, V = cf->vocab_size, T = 1;
    for (int b = 0; b < B; b++) if (R[b].p.n + R[b].n_act > T) T = R[b].p.n + R[b].n_act;
    if (T > c->max_T) return t2_fail("a rollout of %d positions exceeds the training allocation %d", T, c->max_T), NAN;
    size_t N = (size_t)B * T;
    int32_t *tok = t2_calloc(N, sizeof(int32_t)), *tgt = t2_malloc(sizeof(int32_t) * N);
    uint8_t *ise = t2_calloc(N, 1);
    float *emb = t2_calloc(N * H, sizeof(float));
    for (size_t n = 0; n < N; n++) tgt[n] = -1;
    for (int b = 0; b < B; b++) {
        rollout *r = &R[b];
        size_t o = (size_t)b * T;
        for (int t = 0; t < r->p.n; t++) {
            tok[o + t] = r->p.ids[t];
            if (r->p.is_embed[t]) ise[o + t] = 1, memcpy(emb + (o + t) * H, r->p.embeds + (size_t)t * H, sizeof(float) * H);
        }
        for (int j = 0; j < r->n_act; j++) {
            tok[o + r->p.n + j] = r->act[j];
            tgt[o + r->p.n + j - 1] = r->act[j];
        }
    }
    double kl = 0, loss = 0;
    if (c->o->kl > 0) {   // π_base at the scored positions
        set_weights(c, 1);
        t2_lm_train_forward_embeds(c->tr, tok, emb, ise, tgt, B, T);
        const float *lg = t2_lm_train_logits(c->tr);
        for (size_t n = 0; n < N; n++) {
            if (tgt[n] < 0) continue;
            const float *l = lg + n * V;
            float *p = c->pbase + n * V, mx = -INFINITY;
            double s = 0;
            for (int v = 0; v < V; v++) mx = fmaxf(mx, l[v]);
            for (int v = 0; v < V; v++) s += (p[v] = expf(l[v] - mx));
            for (int v = 0; v < V; v++) p[v] = (float)(p[v] / s);
        }
    }
    set_weights(c, 0);
    t2_lm_train_zero_grad(c->tr);
    t2_lm_train_forward_embeds(c->tr, tok, emb, ise, tgt, B, T);
    const float *lg = t2_lm_train_logits(c->tr);
    float *dl = t2_lm_train_dlogits_buffer(c->tr);
    memset(dl, 0, sizeof(float) * N * V);
    double rb = 0;   // the baseline: 0 (official) or the batch's mean reward
    if (c->o->baseline) {
        for (int b = 0; b < B; b++) rb += R[b].reward;
        rb /= B;
    }
    for (size_t n = 0; n < N; n++) {
        if (tgt[n] < 0) continue;
        double r = R[n / T].reward - rb;
        const float *l = lg + n * V;
        float *d = dl + n * V, mx = -INFINITY;
        double s = 0;
        for (int v = 0; v < V; v++) mx = fmaxf(mx, l[v]);
        for (int v = 0; v < V; v++) s += (d[v] = expf(l[v] - mx));
        double lse = log(s) + mx;
        loss += -r * (l[tgt[n]] - lse) / B;
        for (int v = 0; v < V; v++) d[v] = (float)(d[v] / s);   // π
        if (c->o->kl > 0) {
            const float *pb = c->pbase + n * V;
            double k = 0;
            for (int v = 0; v < V; v++) if (pb[v] > 0) k += pb[v] * (log(pb[v]) - (l[v] - lse));
            kl += k;
            loss += c->o->kl * k / B;
        }
        float cr = (float)(r / B), ck = (float)(c->o->kl / B);
        const float *pb = c->o->kl > 0 ? c->pbase + n * V : NULL;
        for (int v = 0; v < V; v++) {
            float pi = d[v];
            d[v] = cr * (pi - (v == tgt[n])) + (pb ? ck * (pi - pb[v]) : 0.0f);
        }
    }
    t2_lm_train_backward_from(c->tr, dl);
    memset(dz, 0, sizeof(float) * c->e->n);
    for (int i = 0; i < t2_svf_count(c->svf); i++) {
        const t2_svf_matrix *mx = t2_svf_at(c->svf, i);
        const float *X, *dY;
        int rows, in, out;
        if (t2_lm_train_linear_io(c->tr, mx->layer, (t2_lm_linear)mx->which, &X, &dY, &rows, &in, &out)) continue;
        t2_svf_grad_z(c->svf, i, c->e->z + mx->offset, c->e->param, X, dY, rows, dz + mx->offset, NULL);
    }
    int scored = 0;
    for (size_t n = 0; n < N; n++) scored += tgt[n] >= 0;
    *kl_out = scored ? kl / scored : 0;
    free(tok), free(tgt), free(ise), free(emb);
    return loss;
}

// Mean score × 100 of the expert now applied on the first N items of SET.
static int evaluate(ctx *c, const t2_eval_set *set, int n, double *score) {
    if (n <= 0 || n > set->n) n = set->n;
    c->cur = c->greedy;   // validation is greedy whatever the rollouts' temperature
    double s = 0;
    for (int i = 0; i < n; i++) {
        rollout r;
        if (roll(c, &set->items[i], &r, 0)) { roll_free(&r); return -1; }
        s += r.score;
        roll_free(&r);
    }
    *score = 100 * s / n;
    c->cur = c->smp;
    return 0;
}

// The run's settings as a JSON object (stored in the expert and the checkpoint): cJSON escapes the
// strings (a model path with quotes or backslashes) and sets no length limit. NULL on no memory.
static char *settings_json(const t2_svf_train_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "task", o->task ? o->task : "");
    cJSON_AddStringToObject(j, "model", o->model_dir);
    cJSON_AddStringToObject(j, "param", t2_svf_param_name(o->param));
    cJSON_AddNumberToObject(j, "iters", o->iters);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "kl", o->kl);
    cJSON_AddNumberToObject(j, "temperature", o->temperature);
    cJSON_AddStringToObject(j, "baseline", o->baseline ? "mean" : "none");
    cJSON_AddStringToObject(j, "objective", o->nll ? "nll" : "reinforce");
    cJSON_AddNumberToObject(j, "max_new", o->max_new);
    char seed[24];   // exact: a double would round seeds above 2^53
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddRawToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "train_items", o->train->n);
    cJSON_AddNumberToObject(j, "valid_items", o->valid ? o->valid->n : 0);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int t2_svf_train_run(const t2_svf_train_opts *o) {
    if (!o->train || o->train->n == 0) return t2_fail("svf train: no training items");
    if (o->iters < 1 || o->batch < 1) return t2_fail("svf train: iterations and batch must be >= 1");
    ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    int rc = 0;
    char svfp[2048], run[2100], ckpt[2200], logp[2200], curve[2200];
    snprintf(run, sizeof run, "%s.run", o->out);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run);
    snprintf(logp, sizeof logp, "%s/log.csv", run);
    snprintf(curve, sizeof curve, "%s/reward.png", run);
    if (!(c.m = t2_vlm_load(o->model_dir, o->threads, 1))) return -1;
    c.tok = t2_vlm_tok(c.m);
    if (t2_vlm_chat_kind(c.m, NULL, &c.chat)) c.chat = T2_CHAT_NONE;
    if (o->svf_path) snprintf(svfp, sizeof svfp, "%s", o->svf_path);
    else t2_svf_default_path(svfp, sizeof svfp, o->model_dir, T2_SVF_MLP);
    t2_adamw adam = {0};
    FILE *log = NULL;
    float *dz = NULL;
    rollout *R = NULL;
    char *settings = NULL;
    if (!(c.svf = t2_svf_load(svfp, t2_vlm_weights(c.m), t2_vlm_pool(c.m)))) rc = -1;
    if (rc == 0 && !(c.ad = t2_svf_adapter_new(t2_vlm_lm(c.m), c.svf, 2))) rc = -1;
    if (rc == 0 && !(c.e = t2_expert_new(c.svf, o->param, o->seed))) rc = -1;
    const t2_lm_config *cf = t2_vlm_lm_cfg(c.m);
    c.max_T = 256;
    if (rc == 0 && !(c.tr = t2_lm_train_new_ex(cf, o->batch, c.max_T, T2_LM_TRAIN_SAVE_LINEAR))) rc = -1;
    if (rc == 0) rc = t2_lm_train_load(c.tr, t2_vlm_weights(c.m));
    if (rc == 0) {
        t2_sampler_params sp = t2_sampler_defaults();
        sp.temperature = o->temperature, sp.seed = o->seed;
        c.smp = c.cur = t2_sampler_new(cf->vocab_size, sp);
        c.greedy = t2_sampler_new(cf->vocab_size, t2_sampler_defaults());
        c.logits = t2_malloc(sizeof(float) * cf->vocab_size);
        int n = t2_svf_count(c.svf);
        size_t tot = 0, kmax = 0;
        c.wptr = t2_malloc(sizeof(float *) * n);
        for (int i = 0; i < n; i++) {
            const t2_svf_matrix *mx = t2_svf_at(c.svf, i);
            c.wptr[i] = train_matrix(c.tr, mx->layer, mx->which);
            tot += (size_t)mx->rows * mx->cols;
            if ((size_t)mx->k > kmax) kmax = mx->k;
        }
        c.base = t2_malloc(sizeof(float) * tot);
        for (int i = 0, off = 0; i < n; i++) {
            const t2_svf_matrix *mx = t2_svf_at(c.svf, i);
            memcpy(c.base + off, c.wptr[i], sizeof(float) * mx->rows * mx->cols);
            off += mx->rows * mx->cols;
        }
        c.scratch = t2_malloc(sizeof(float) * kmax * kmax);
        if (o->kl > 0) c.pbase = t2_malloc(sizeof(float) * (size_t)o->batch * c.max_T * cf->vocab_size);
        dz = t2_malloc(sizeof(float) * c.e->n);
        R = t2_calloc((size_t)o->batch, sizeof *R);
        rc = t2_adamw_init(&adam, c.e->n) || t2_mkdirs(run);
        if (rc == 0 && !(settings = settings_json(o))) rc = t2_fail("svf train: out of memory");
    }
    t2_rng rng;
    t2_rng_seed(&rng, o->seed);
    int it0 = 0;
    double best = -1;
    if (rc == 0 && o->resume) {
        char *saved = NULL;
        if ((rc = t2_train_state_load(ckpt, c.e->z, &adam, &rng, &saved)) == 0) {
            it0 = (int)adam.step;
            t2_expert *b = t2_expert_load(o->out, c.svf);
            if (b) best = b->score, t2_expert_free(b);
            if (!o->quiet) fprintf(stderr, "resuming %s at iteration %d (best validation %.2f)\n", ckpt, it0, best);
        }
        free(saved);
    } else if (rc == 0) {
        struct stat sb;
        if (stat(ckpt, &sb) == 0) rc = t2_fail("%s exists: pass --resume to continue, or choose another --out", ckpt);
        else rc = t2_write_file_atomic(logp, "iter,reward,accuracy,loss,kl,grad_norm,valid,elapsed_s\n",
                                       strlen("iter,reward,accuracy,loss,kl,grad_norm,valid,elapsed_s\n"));
    }
    if (rc == 0 && !(log = fopen(logp, "a"))) rc = t2_fail("%s: %s", logp, strerror(errno));
    t2_adamw_config ac = t2_adamw_defaults();
    ac.weight_decay = 0;
    t2_param_range all = {0, c.e ? c.e->n : 0, 0};
    double t_start = t2_now();
    if (rc == 0 && !o->quiet)
        fprintf(stderr, "t2 svf train: %s, %d matrices, %zu z values, %d train / %d valid items, %d iterations of %d rollouts\n",
                o->task ? o->task : "", t2_svf_count(c.svf), c.e->n, o->train->n, o->valid ? o->valid->n : 0, o->iters, o->batch);
    if (rc == 0 && o->valid && it0 == 0) {   // the starting point (z init ≈ base weights)
        double v;
        if ((rc = t2_svf_apply(c.ad, c.e)) == 0 && (rc = evaluate(&c, o->valid, o->valid_n, &v)) == 0) {
            if (!o->quiet) fprintf(stderr, "iteration 0: validation %.2f\n", v);
            fprintf(log, "0,,,,,,%.4f,%.2f\n", v, t2_now() - t_start);
            best = v;
            t2_expert_describe(c.e, o->task, settings, v);
            rc = t2_expert_save(c.e, o->out);
        }
    }
    int end = o->max_iters > 0 && it0 + o->max_iters < o->iters ? it0 + o->max_iters : o->iters;
    for (int it = it0; rc == 0 && it < end; it++) {
        double t0 = t2_now();
        if ((rc = t2_svf_apply(c.ad, c.e))) break;
        double rsum = 0, ssum = 0;
        for (int b = 0; b < o->batch && rc == 0; b++) {
            t2_rng ir;
            t2_rng_seed(&ir, mix64(mix64(o->seed) ^ (uint64_t)it * 1000003u ^ (uint64_t)b));
            rc = roll(&c, &o->train->items[t2_rng_below(&ir, (uint64_t)o->train->n)], &R[b], o->nll);
            rsum += R[b].reward, ssum += R[b].score;
        }
        double kl = 0, loss = 0;
        float gn = 0;
        if (rc == 0) {
            loss = policy_pass(&c, R, o->batch, dz, &kl);
            if (isnan(loss)) rc = -1;
        }
        if (rc == 0) {
            gn = t2_clip_grad_norm(dz, c.e->n, (float)o->clip);
            t2_adamw_step(&adam, &ac, o->lr, c.e->z, dz, &all, 1);
        }
        for (int b = 0; b < o->batch; b++) roll_free(&R[b]);
        if (rc) break;
        int done = it + 1;
        double v = NAN;
        if (o->valid && (done % o->valid_every == 0 || done == o->iters)) {
            if ((rc = t2_svf_apply(c.ad, c.e)) || (rc = evaluate(&c, o->valid, o->valid_n, &v))) break;
            if (v > best) {
                best = v;
                t2_expert_describe(c.e, o->task, settings, v);
                if ((rc = t2_expert_save(c.e, o->out))) break;
            }
        }
        // with --objective nll nothing is generated: the accuracy column is nan, the loss is the answers' NLL
        double acc = o->nll ? NAN : 100 * ssum / o->batch;
        fprintf(log, "%d,%.4f,%.4f,%.6g,%.6g,%.6g,%.4f,%.2f\n", done, rsum / o->batch, acc, loss, kl, gn,
                isnan(v) ? -1.0 : v, t2_now() - t_start);
        fflush(log);
        if (!o->quiet && o->nll)
            fprintf(stderr, "iter %d/%d  answer nll %.4f  kl %.4f  |g| %.3g  %.1fs%s\n", done, o->iters, loss, kl, gn,
                    t2_now() - t0, isnan(v) ? "" : "  (validated)");
        else if (!o->quiet)
            fprintf(stderr, "iter %d/%d  reward %+.3f  acc %.1f  loss %.4f  kl %.4f  |g| %.3g  %.1fs%s\n", done, o->iters,
                    rsum / o->batch, acc, loss, kl, gn, t2_now() - t0, isnan(v) ? "" : "  (validated)");
        if (!isnan(v) && !o->quiet) fprintf(stderr, "  validation %.2f (best %.2f)\n", v, best);
        if (rc == 0) rc = t2_train_state_save(ckpt, c.e->z, &adam, &rng, settings);
    }
    if (rc == 0 && !o->valid) {   // no validation: the last z is the expert
        t2_expert_describe(c.e, o->task, settings, NAN);
        rc = t2_expert_save(c.e, o->out);
    }
    if (log) {
        fclose(log);
        // the curve: reward per iteration and the validation score
        size_t n;
        char *b = t2_read_file(logp, &n);
        if (b) {
            double *x = t2_malloc(sizeof(double) * (n / 8 + 2)), *y = t2_malloc(sizeof(double) * (n / 8 + 2));
            double *vx = t2_malloc(sizeof(double) * (n / 8 + 2)), *vy = t2_malloc(sizeof(double) * (n / 8 + 2));
            int k = 0, kv = 0;
            for (char *p = strchr(b, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
                int i;
                double rw, acc, l2, k2, g2, va;
                if (sscanf(p + 1, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &i, &rw, &acc, &l2, &k2, &g2, &va) == 7) {
                    x[k] = i, y[k++] = acc;
                    if (va >= 0) vx[kv] = i, vy[kv++] = va;
                } else if (sscanf(p + 1, "%d,,,,,,%lf", &i, &va) == 2) vx[kv] = i, vy[kv++] = va;   // the start
            }
            const char *names[2] = {"train accuracy (rollouts)", "validation"};
            const double *xs[2] = {x, vx}, *ys[2] = {y, vy};
            int ns[2] = {k, kv};
            if (o->nll && kv > 0)   // nothing generated in training: the validation alone
                t2_chart_lines(curve, "SVF, next-token prediction", "iteration", names + 1, 1, xs + 1, ys + 1, ns + 1, 0);
            else if (k > 0) t2_chart_lines(curve, "SVF REINFORCE", "iteration", names, 2, xs, ys, ns, 0);
            free(x), free(y), free(vx), free(vy), free(b);
        }
    }
    if (rc == 0 && !o->quiet) fprintf(stderr, "expert → %s (validation %.2f)\n", o->out, best);
    free(settings), free(dz), free(R);
    t2_adamw_free(&adam);
    free(c.logits), free(c.wptr), free(c.base), free(c.scratch), free(c.pbase);
    if (c.smp) t2_sampler_free(c.smp);
    if (c.greedy) t2_sampler_free(c.greedy);
    t2_lm_train_free(c.tr);
    t2_expert_free(c.e);
    t2_svf_adapter_free(c.ad);
    t2_svf_free(c.svf);
    t2_vlm_free(c.m);
    return rc;
}
