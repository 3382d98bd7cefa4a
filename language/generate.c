// generate.c — the decoding loop (see generate.h). The output is re-decoded from all generated ids
// at each step (decoding is cheap next to a forward pass) so byte-fallback and byte-level pieces
// join correctly; text is released up to the last whole UTF-8 character that cannot still become
// part of a stop string.
#include "language/generate.h"
#include "core/error.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Length of the longest prefix of S[0..n) that ends on a UTF-8 character boundary.
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n;
    int back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) { i--; back++; }
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return (back + 1 >= need) ? n : i - 1;
}

// Decodes IDS(n) into *buf (grown as needed); returns the length.
static size_t decode_all(const t2_tokenizer *tok, const int32_t *ids, int n, char **buf, size_t *cap) {
    if (!tok) {
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            if (*cap - len < 16) *buf = t2_realloc(*buf, *cap *= 2);
            len += (size_t)snprintf(*buf + len, *cap - len, "%s%d", i ? " " : "", ids[i]);
        }
        return len;
    }
    int need = t2_tok_decode(tok, ids, n, 1, *buf, *cap);
    if (need < 0) return 0;   // cannot happen: only decodable ids are passed
    while ((size_t)need >= *cap) {
        *buf = t2_realloc(*buf, *cap = (size_t)need * 2 + 64);
        need = t2_tok_decode(tok, ids, n, 1, *buf, *cap);
    }
    return (size_t)need;
}

void t2_gen_begin(t2_gen *g, const t2_lm *lm, const t2_tokenizer *tok, const int32_t *prompt, int n_prompt,
                  const t2_gen_params *gp) {
    memset(g, 0, sizeof *g);
    g->tok = tok;
    g->gp = gp;
    g->eos_id = t2_lm_cfg(lm)->eos_id;
    g->np = gp->n_predict > 0 ? gp->n_predict : 0;
    g->n_prompt = g->n_hist = n_prompt;
    g->hist = t2_malloc(sizeof(int32_t) * (size_t)(n_prompt + g->np + 1));
    memcpy(g->hist, prompt, sizeof(int32_t) * (size_t)n_prompt);
    // The ids the tokenizer can decode: a model's vocabulary is often padded past the tokenizer's
    // (llava-1.5: 32064 vs 32002); such ids are generated and fed back but print nothing.
    g->text_ids = t2_malloc(sizeof(int32_t) * (size_t)(g->np + 1));
    g->cap = 4096;
    g->out = t2_malloc(g->cap);
    g->out[0] = 0;
    for (int i = 0; i < gp->n_stops; i++) if (strlen(gp->stops[i]) > g->max_stop) g->max_stop = strlen(gp->stops[i]);
    g->stop = T2_GEN_STOP_LENGTH;
    g->done = g->np == 0;
}

int t2_gen_step(t2_gen *g, t2_sampler *smp, float *logits, int32_t *next) {
    if (g->done) return 1;
    const t2_gen_params *gp = g->gp;
    int tok_id = t2_sampler_sample(smp, logits, g->hist, g->n_hist);
    if (((g->tok && t2_tok_is_eos(g->tok, tok_id)) || tok_id == g->eos_id) && !gp->ignore_eos) {
        g->stop = T2_GEN_STOP_EOS;
        g->done = 1;
        if (g->printed < g->len && gp->on_text) gp->on_text(gp->ctx, g->out + g->printed, g->len - g->printed);
        g->printed = g->len;
        return 1;
    }
    g->hist[g->n_hist++] = tok_id;
    g->n_gen++;
    char probe[64];
    if (!g->tok || t2_tok_decode(g->tok, &tok_id, 1, 1, probe, sizeof probe) >= 0) g->text_ids[g->n_text++] = tok_id;
    g->len = decode_all(g->tok, g->text_ids, g->n_text, &g->out, &g->cap);
    for (int i = 0; i < gp->n_stops; i++) {
        size_t from = g->printed > g->max_stop ? g->printed - g->max_stop : 0;
        char *hit = strstr(g->out + from, gp->stops[i]);
        if (hit && (size_t)(hit - g->out) < g->len) { g->len = (size_t)(hit - g->out); g->done = 1; g->stop = T2_GEN_STOP_STRING; }
    }
    if (g->n_gen >= g->np) g->done = 1;
    size_t hold = g->max_stop > 0 ? g->max_stop - 1 : 0;   // bytes that could still start a stop string
    size_t ready = g->done ? g->len : utf8_complete(g->out, g->len > hold ? g->len - hold : 0);
    if (ready > g->printed) {
        if (gp->on_text && gp->on_text(gp->ctx, g->out + g->printed, ready - g->printed)) {
            g->done = 1;
            g->stop = T2_GEN_STOP_CALLER;
        }
        g->printed = ready;
    }
    *next = tok_id;
    return g->done;
}

void t2_gen_end(t2_gen *g, t2_gen_result *res) {
    memset(res, 0, sizeof *res);
    g->out[g->len] = 0;
    res->text = g->out;
    res->len = g->len;
    res->n_gen = g->n_gen;
    res->stop = g->stop;
    res->ids = t2_malloc(sizeof(int32_t) * (size_t)(g->n_gen ? g->n_gen : 1));
    memcpy(res->ids, g->hist + g->n_prompt, sizeof(int32_t) * (size_t)g->n_gen);
    free(g->hist);
    free(g->text_ids);
    memset(g, 0, sizeof *g);
}

int t2_generate(t2_lm *lm, t2_lm_state *st, const t2_tokenizer *tok, t2_sampler *smp, float *logits,
                const int32_t *prompt, int n_prompt, const t2_gen_params *gp, t2_gen_result *res) {
    t2_gen g;
    t2_gen_begin(&g, lm, tok, prompt, n_prompt, gp);
    double t0 = t2_now();
    int rc = 0;
    int32_t next;
    while (!t2_gen_step(&g, smp, logits, &next))
        if (t2_lm_forward(lm, st, &next, NULL, NULL, 1, logits, 0)) { rc = -1; break; }
    double t = t2_now() - t0;
    t2_gen_end(&g, res);
    res->t_decode = t;
    return rc;
}

void t2_gen_result_free(t2_gen_result *res) {
    free(res->text);
    free(res->ids);
    memset(res, 0, sizeof *res);
}
