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
            if (*cap - len < 16) *buf = realloc(*buf, *cap *= 2);
            len += (size_t)snprintf(*buf + len, *cap - len, "%s%d", i ? " " : "", ids[i]);
        }
        return len;
    }
    int need = t2_tok_decode(tok, ids, n, 1, *buf, *cap);
    if (need < 0) return 0;   // cannot happen: only decodable ids are passed
    while ((size_t)need >= *cap) {
        *buf = realloc(*buf, *cap = (size_t)need * 2 + 64);
        need = t2_tok_decode(tok, ids, n, 1, *buf, *cap);
    }
    return (size_t)need;
}

int t2_generate(t2_lm *lm, t2_lm_state *st, const t2_tokenizer *tok, t2_sampler *smp, float *logits,
                const int32_t *prompt, int n_prompt, const t2_gen_params *gp, t2_gen_result *res) {
    memset(res, 0, sizeof *res);
    const t2_lm_config *cfg = t2_lm_cfg(lm);
    int np = gp->n_predict > 0 ? gp->n_predict : 0;
    int32_t *hist = t2_malloc(sizeof(int32_t) * (size_t)(n_prompt + np + 1));
    // The ids the tokenizer can decode: a model's vocabulary is often padded past the tokenizer's
    // (llava-1.5: 32064 vs 32002); such ids are generated and fed back but print nothing.
    int32_t *text_ids = t2_malloc(sizeof(int32_t) * (size_t)(np + 1));
    int n_text = 0;
    memcpy(hist, prompt, sizeof(int32_t) * (size_t)n_prompt);
    size_t cap = 4096, printed = 0, len = 0, max_stop = 0;
    char *out = t2_malloc(cap);
    out[0] = 0;
    for (int i = 0; i < gp->n_stops; i++) if (strlen(gp->stops[i]) > max_stop) max_stop = strlen(gp->stops[i]);
    size_t hold = max_stop > 0 ? max_stop - 1 : 0;   // bytes that could still start a stop string
    int n_hist = n_prompt, rc = 0, done = np == 0;
    res->stop = T2_GEN_STOP_LENGTH;
    double t0 = t2_now();
    while (!done) {
        int tok_id = t2_sampler_sample(smp, logits, hist, n_hist);
        int is_eos = (tok && t2_tok_is_eos(tok, tok_id)) || tok_id == cfg->eos_id;
        if (is_eos && !gp->ignore_eos) { res->stop = T2_GEN_STOP_EOS; break; }
        hist[n_hist++] = tok_id;
        res->n_gen++;
        char probe[64];
        if (!tok || t2_tok_decode(tok, &tok_id, 1, 1, probe, sizeof probe) >= 0) text_ids[n_text++] = tok_id;
        len = decode_all(tok, text_ids, n_text, &out, &cap);
        for (int i = 0; i < gp->n_stops; i++) {
            size_t from = printed > max_stop ? printed - max_stop : 0;
            char *hit = strstr(out + from, gp->stops[i]);
            if (hit && (size_t)(hit - out) < len) { len = (size_t)(hit - out); done = 1; res->stop = T2_GEN_STOP_STRING; }
        }
        if (res->n_gen >= np) done = 1;
        size_t ready = done ? len : utf8_complete(out, len > hold ? len - hold : 0);
        if (ready > printed) {
            if (gp->on_text && gp->on_text(gp->ctx, out + printed, ready - printed)) {
                done = 1;
                res->stop = T2_GEN_STOP_CALLER;
            }
            printed = ready;
        }
        if (!done && t2_lm_forward(lm, st, &hist[n_hist - 1], NULL, NULL, 1, logits, 0)) { rc = -1; break; }
    }
    if (rc == 0 && res->stop == T2_GEN_STOP_EOS && printed < len && gp->on_text)
        gp->on_text(gp->ctx, out + printed, len - printed);
    res->t_decode = t2_now() - t0;
    out[len] = 0;
    res->text = out;
    res->len = len;
    res->ids = t2_malloc(sizeof(int32_t) * (size_t)(res->n_gen ? res->n_gen : 1));
    memcpy(res->ids, hist + n_prompt, sizeof(int32_t) * (size_t)res->n_gen);
    free(hist);
    free(text_ids);
    return rc;
}

void t2_gen_result_free(t2_gen_result *res) {
    free(res->text);
    free(res->ids);
    memset(res, 0, sizeof *res);
}
