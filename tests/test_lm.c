// test_lm.c — the language model against an independent reference (tests/ref/lm_ref.py: torch, f64,
// written from the HF model definitions) on tiny random checkpoints written by tests/ref/make_lm.py:
// Llama, Llama-3 rope scaling, Qwen2 (biases, tied head), Mistral; all three weight-name layouts,
// F32 / F16 / BF16, single and sharded files. Also: KV-cache decoding equals the full forward,
// blocked prefill equals one block, embeddings input equals token input, clear errors past the
// context or the vocabulary, and the CLI's --prompt-ids / --dump-logits path.
#include "testutil.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "language/lm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int32_t PROMPT[] = {1, 17, 250, 3, 99, 42, 42, 7, 280, 5, 64, 12, 0, 299, 150, 31};
#define NP ((int)(sizeof PROMPT / sizeof PROMPT[0]))

static void ids_str(char *out, size_t cap, const int32_t *ids, int n) {
    size_t k = 0;
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(out + k, cap - k, "%s%d", i ? "," : "", ids[i]);
}

typedef struct { const char *arch, *layout, *dtype; int shards; const char *extra; } lm_case;

// Loads DIR, returns the logits (NP, V) of the full prompt in one block; *lm_out etc. kept for more checks.
static float *run_full(const char *dir, t2_st **st, t2_lm **lm, t2_lm_config *cfg, t2_pool *pool) {
    if (t2_lm_config_load(dir, cfg)) { printf("FAIL config: %s\n", t2_last_error()); return NULL; }
    *st = t2_st_open(dir);
    if (!*st) { printf("FAIL open: %s\n", t2_last_error()); return NULL; }
    *lm = t2_lm_new(*st, cfg, pool);
    if (!*lm) { printf("FAIL bind: %s\n", t2_last_error()); return NULL; }
    t2_lm_state *s = t2_lm_state_new(*lm, 64, NP);
    float *logits = t2_malloc(sizeof(float) * NP * cfg->vocab_size);
    int rc = t2_lm_forward(*lm, s, PROMPT, NULL, NULL, NP, logits, 1);
    T2_CHECK(rc == 0, "forward failed: %s", t2_last_error());
    t2_lm_state_free(s);
    return logits;
}

static void check_case(const t2_test_env *e, const lm_case *c, t2_pool *pool) {
    char dir[1024], ref[1100], ids[256], name[256];
    snprintf(name, sizeof name, "%s/%s/%s/shards%d%s", c->arch, c->layout, c->dtype, c->shards, c->extra);
    snprintf(dir, sizeof dir, "%s/%s-%s-%s-%d%s", e->work, c->arch, c->layout, c->dtype, c->shards,
             c->extra[0] ? "-x" : "");
    snprintf(ref, sizeof ref, "%s/ref.f32", dir);
    ids_str(ids, sizeof ids, PROMPT, NP);
    int rc = t2_test_python(e, "make_lm.py", "'%s' --arch %s --layout %s --dtype %s --shards %d --seed 7 %s",
                            dir, c->arch, c->layout, c->dtype, c->shards, c->extra);
    T2_CHECK(rc == 0, "make_lm.py failed for %s", name);
    rc = t2_test_python(e, "lm_ref.py", "'%s' --tokens %s --out '%s'", dir, ids, ref);
    T2_CHECK(rc == 0, "lm_ref.py failed for %s", name);
    if (rc) return;
    t2_st *st = NULL;
    t2_lm *lm = NULL;
    t2_lm_config cfg;
    float *got = run_full(dir, &st, &lm, &cfg, pool);
    T2_CHECK(got != NULL, "%s did not load", name);
    if (!got) { t2_lm_free(lm); t2_st_close(st); return; }
    int V = cfg.vocab_size;
    float *want = t2_test_read_f32(ref, (size_t)NP * V, NULL);
    if (want) t2_test_close(name, got, want, (size_t)NP * V, 1e-4);

    // KV cache: prefill 5, then decode one at a time; every step's logits = the full forward's row.
    t2_lm_state *s = t2_lm_state_new(lm, 64, 8);
    float *row = t2_malloc(sizeof(float) * V);
    double worst = 0;
    T2_CHECK(t2_lm_forward(lm, s, PROMPT, NULL, NULL, 5, row, 0) == 0, "prefill: %s", t2_last_error());
    for (int t = 5; t < NP; t++) {
        T2_CHECK(t2_lm_forward(lm, s, &PROMPT[t], NULL, NULL, 1, row, 0) == 0, "decode: %s", t2_last_error());
        for (int i = 0; i < V; i++) {
            double d = fabs(row[i] - got[(size_t)t * V + i]);
            if (!(d <= worst)) worst = d;
        }
    }
    T2_CHECK(worst <= 1e-4, "%s: KV-cache decode differs from the full forward by %g", name, worst);
    T2_CHECK(t2_lm_state_pos(s) == NP, "state position %d != %d", t2_lm_state_pos(s), NP);

    // Blocked prefill (blocks of 3, all logits) equals one block; embeddings input equals tokens.
    t2_lm_state *s3 = t2_lm_state_new(lm, 64, 3);
    float *blk = t2_malloc(sizeof(float) * NP * V);
    T2_CHECK(t2_lm_forward(lm, s3, PROMPT, NULL, NULL, NP, blk, 1) == 0, "blocked: %s", t2_last_error());
    t2_test_close("  blocked prefill (3) vs one block", blk, got, (size_t)NP * V, 1e-4);
    int C = cfg.hidden_size;
    float *emb = t2_malloc(sizeof(float) * NP * C);
    uint8_t mask[NP];
    for (int t = 0; t < NP; t++) { t2_lm_embed(lm, PROMPT[t], emb + (size_t)t * C); mask[t] = (uint8_t)(t % 2); }
    float *blk2 = t2_malloc(sizeof(float) * NP * V);
    t2_lm_state_rewind(s3, 0);
    T2_CHECK(t2_lm_forward(lm, s3, PROMPT, emb, mask, NP, blk2, 1) == 0, "embeds: %s", t2_last_error());
    t2_test_close("  embeddings for odd positions vs tokens (bit-exact)", blk2, blk, (size_t)NP * V, 0);
    free(blk2);

    free(emb); free(blk); free(row); free(want); free(got);
    t2_lm_state_free(s3);
    t2_lm_state_free(s);
    t2_lm_free(lm);
    t2_st_close(st);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    t2_pool *pool = t2_pool_new(2);
    static const lm_case cases[] = {
        {"llama", "plain", "F32", 1, ""},
        {"llama", "legacy", "F32", 1, ""},
        {"llama", "new", "F32", 2, ""},
        {"llama3", "plain", "F32", 1, ""},
        {"llama3", "new", "BF16", 1, ""},
        {"qwen2", "plain", "F32", 1, ""},
        {"qwen2", "new", "F16", 3, ""},
        {"qwen2", "legacy", "BF16", 1, "--tie 0"},
        {"mistral", "plain", "F16", 1, "--head-dim 32"},
        {"llama", "plain", "BF16", 2, "--tie 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&e, &cases[i], pool);

    // Single-threaded run equals the pooled one; errors past the context and the vocabulary.
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama-plain-F32-1", e.work);
    t2_st *st1 = NULL, *st2 = NULL;
    t2_lm *lm1 = NULL, *lm2 = NULL;
    t2_lm_config cfg;
    float *a = run_full(dir, &st1, &lm1, &cfg, NULL);
    float *b = run_full(dir, &st2, &lm2, &cfg, pool);
    if (a && b) t2_test_close("1 thread vs 2 threads", a, b, (size_t)NP * cfg.vocab_size, 1e-5);
    t2_lm_state *s = t2_lm_state_new(lm1, 8, 8);
    float *row = t2_malloc(sizeof(float) * cfg.vocab_size);
    T2_CHECK(t2_lm_forward(lm1, s, PROMPT, NULL, NULL, 9, row, 0) == -1 &&
             strstr(t2_last_error(), "context length exceeded"), "9 positions in an 8-context: '%s'", t2_last_error());
    int32_t bad[2] = {3, 300};
    T2_CHECK(t2_lm_forward(lm1, s, bad, NULL, NULL, 2, row, 0) == -1 && strstr(t2_last_error(), "token id 300"),
             "out-of-vocabulary id: '%s'", t2_last_error());
    T2_CHECK(t2_lm_state_new(lm1, cfg.max_position + 1, 1) == NULL && strstr(t2_last_error(), "max_position_embeddings"),
             "context above max_position_embeddings: '%s'", t2_last_error());

    // Batched decode: three sequences of different lengths stepped together equal each stepped alone.
    {
        const char *bdirs[] = {"llama-plain-F32-1", "qwen2-new-F16-3"};
        for (int q = 0; q < 2; q++) {
            char bd[1100];
            snprintf(bd, sizeof bd, "%s/%s", e.work, bdirs[q]);
            t2_st *bst = NULL;
            t2_lm *blm = NULL;
            t2_lm_config bcfg;
            float *full = run_full(bd, &bst, &blm, &bcfg, pool);
            free(full);
            if (!blm) continue;
            int V = bcfg.vocab_size, lens[3] = {3, 9, 14};   // sequence k is PROMPT[k .. k + lens[k])
            t2_lm_state *bs[3], *one[3];
            float *lb = t2_malloc(sizeof(float) * 3 * V), *l1 = t2_malloc(sizeof(float) * V);
            int32_t cat[32];
            int nc = 0;
            float *lone = t2_malloc(sizeof(float) * 3 * V);
            for (int k = 0; k < 3; k++) {
                bs[k] = t2_lm_state_new(blm, 64, 32);
                one[k] = t2_lm_state_new(blm, 64, 4);
                T2_CHECK(t2_lm_forward(blm, one[k], PROMPT + k, NULL, NULL, lens[k], lone + (size_t)k * V, 0) == 0, "prefill");
                for (int i = 0; i < lens[k]; i++) cat[nc++] = PROMPT[k + i];
            }
            // Batched prefill of the three prompts (26 positions in one block) = each alone.
            T2_CHECK(t2_lm_forward_batch(blm, bs, 3, lens, cat, NULL, NULL, lb) == 0, "batched prefill: %s", t2_last_error());
            double worst = 0;
            for (size_t i = 0; i < (size_t)3 * V; i++) {
                double d = fabs(lb[i] - lone[i]);
                if (!(d <= worst)) worst = d;
            }
            printf("%s %s: batched prefill vs one by one: max abs diff %.3g\n", worst <= 1e-4 ? "ok  " : "FAIL", bdirs[q], worst);
            T2_CHECK(worst <= 1e-4, "%s: batched prefill differs by %g", bdirs[q], worst);
            free(lone);
            worst = 0;
            for (int step = 0; step < 4; step++) {
                int32_t toks[3] = {PROMPT[step], PROMPT[step + 5], PROMPT[step + 9]};
                T2_CHECK(t2_lm_forward_batch(blm, bs, 3, NULL, toks, NULL, NULL, lb) == 0, "batched step: %s", t2_last_error());
                for (int k = 0; k < 3; k++) {
                    T2_CHECK(t2_lm_forward(blm, one[k], &toks[k], NULL, NULL, 1, l1, 0) == 0, "single step");
                    for (int i = 0; i < V; i++) {
                        double d = fabs(lb[(size_t)k * V + i] - l1[i]);
                        if (!(d <= worst)) worst = d;
                    }
                }
            }
            printf("%s %s: batched decode vs one by one: max abs diff %.3g\n", worst <= 1e-4 ? "ok  " : "FAIL", bdirs[q], worst);
            T2_CHECK(worst <= 1e-4, "%s: batched decode differs by %g", bdirs[q], worst);
            T2_CHECK(t2_lm_state_pos(bs[1]) == 9 + 4, "positions advanced: %d", t2_lm_state_pos(bs[1]));
            t2_lm_state *twice[2] = {bs[0], bs[0]};
            int32_t tt[2] = {1, 2};
            T2_CHECK(t2_lm_forward_batch(blm, twice, 2, NULL, tt, NULL, NULL, lb) == -1 && strstr(t2_last_error(), "twice"),
                     "same state twice");
            for (int k = 0; k < 3; k++) { t2_lm_state_free(bs[k]); t2_lm_state_free(one[k]); }
            free(lb);
            free(l1);
            t2_lm_free(blm);
            t2_st_close(bst);
        }
    }

    // The CLI: --prompt-ids with --dump-logits -n 0 writes the reference's logits.
    char ids[256], out[1100], *log = NULL;
    ids_str(ids, sizeof ids, PROMPT, NP);
    snprintf(out, sizeof out, "%s/dump.safetensors", e.work);
    int rc = t2_test_sh(&log, "'%s' generate --model '%s' --prompt-ids %s --dump-logits '%s' -n 0 2>&1", e.t2, dir, ids, out);
    T2_CHECK(rc == 0, "t2 generate --dump-logits failed: %s", log);
    free(log);
    t2_st *dump = t2_st_open(out);
    T2_CHECK(dump != NULL, "dump unreadable: %s", t2_last_error());
    if (dump) {
        int64_t shape[2] = {NP, cfg.vocab_size};
        const t2_st_tensor *t = t2_st_get_shape(dump, "logits", 2, shape);
        T2_CHECK(t && t->dtype == T2_DTYPE_F32, "logits tensor: %s", t2_last_error());
        char ref[1100];
        snprintf(ref, sizeof ref, "%s/ref.f32", dir);
        float *want = t2_test_read_f32(ref, (size_t)NP * cfg.vocab_size, NULL);
        if (t && want) t2_test_close("t2 generate --dump-logits vs reference", t->data, want, (size_t)NP * cfg.vocab_size, 1e-4);
        free(want);
        t2_st_close(dump);
    }
    // -n 3 with --prompt-ids and no tokenizer streams 3 ids; bad flags fail with a message.
    rc = t2_test_sh(&log, "'%s' generate --model '%s' --prompt-ids 1,2,3 -n 3 --temp 0 2>/dev/null", e.t2, dir);
    int n1 = -1, n2 = -1, n3 = -1;
    T2_CHECK(rc == 0 && sscanf(log, "%d %d %d", &n1, &n2, &n3) == 3, "3 greedy ids expected, got '%s'", log);
    free(log);
    rc = t2_test_sh(&log, "'%s' generate --model '%s' --prompt-ids 1,2,300 -n 1 2>&1", e.t2, dir);
    T2_CHECK(rc != 0 && strstr(log, "outside the vocabulary"), "bad id accepted: '%s'", log);
    free(log);
    rc = t2_test_sh(&log, "'%s' generate --model '%s/nope' --prompt-ids 1 2>&1", e.t2, dir);
    T2_CHECK(rc != 0 && strstr(log, "nope"), "missing dir: '%s'", log);
    free(log);

    free(row); free(a); free(b);
    t2_lm_state_free(s);
    t2_lm_free(lm1); t2_lm_free(lm2);
    t2_st_close(st1); t2_st_close(st2);
    t2_pool_free(pool);
    return t2_test_done();
}
