// tokenizer_train.c — byte-level BPE training (tokenizer_train.h): GPT-2 pre-split, word counts,
// greedy merges with an incrementally updated pair table, and the Hugging Face files that
// language/tokenizer.c reads. Not here: encoding (tokenizer.c), other model types.
//
// The trainer follows HF tokenizers' BpeTrainer: every distinct pre-token ("word") is a sequence of
// token ids with a frequency; a pair table maps each adjacent pair (a, b) to its count (Σ word
// frequency × occurrences) and to the words it occurs in; a max-heap with lazy entries picks the
// best pair. Merging rewrites only the words that hold the pair, and each such word's pair counts
// are updated by the difference of its pairs before and after — so one merge costs what it touches,
// not the corpus. Heap entries are never updated in place: a pair whose count grew in a step gets a
// fresh entry; an entry that is popped with a count above the pair's current one is pushed again with
// the current count (a stale entry only ever over-estimates, so the first valid pop is the maximum).
// Tie-break and stopping rules: tokenizer_train.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "language/tokenizer_train.h"
#include "core/error.h"
#include "core/util.h"
#include <cJSON.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The GPT-2 pre-tokenizer regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
// with \s spelled as Unicode White_Space, as tokenizer.c's fix_pattern does (PCRE2's \s differs).
#define WS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char *RE_GPT2_WS =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

static const char *VICUNA_TEMPLATE =   // llava-hf/llava-1.5-7b-hf chat_template (tests/ref/templates)
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] "
    "!= 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | "
    "selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}"
    "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

const char *t2_toktrain_vicuna_template(void) { return VICUNA_TEMPLATE; }

typedef struct { int64_t count; int32_t a, b; int32_t *words; int nw, capw; uint32_t stamp; int merged; } pair_t;
typedef struct { int64_t count; int32_t pair; } hent_t;
typedef struct { uint64_t key; int64_t delta; } delta_t;

struct t2_toktrain {
    pcre2_code *re; pcre2_match_data *md;
    // words: distinct raw pre-tokens, their frequency, later their symbols
    char *wpool; size_t wpool_n, wpool_cap;
    size_t *woff; uint32_t *wlen; int64_t *wfreq; size_t n_words, cap_words; int64_t total;
    uint32_t *wt; uint32_t wt_mask;          // hash slots: word index + 1, 0 = empty
    int32_t *sym; size_t *soff; uint32_t *slen; uint32_t *wstamp;
    // tokens: mapped (bytes_to_unicode) strings by id
    char *tpool; size_t tpool_n, tpool_cap;
    size_t *toff; uint32_t *tlen; int n_tok, cap_tok;
    uint32_t *tt; uint32_t tt_mask;          // token hash slots: id + 1
    // pairs
    pair_t *pairs; int n_pairs, cap_pairs;
    uint32_t *pt; uint32_t pt_mask;          // pair hash slots: pair index + 1
    hent_t *heap; size_t heap_n, heap_cap;
    int32_t *merges; int n_merges, cap_merges;   // (n_merges, 2) token ids
    int trained;
};

// ---------------------------------------------------------------------------------------------
// Small helpers

static uint64_t hash_bytes(const char *s, size_t n) {   // FNV-1a
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {   // realloc to hold NEED
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) { fprintf(stderr, "t2: out of memory (%zu bytes)\n", c * elem); abort(); }
    *cap = c;
    return q;
}

static size_t pool_add(char **pool, size_t *n, size_t *cap, const char *s, size_t len) {
    *pool = grow(*pool, cap, *n + len + 1, 1);
    size_t off = *n;
    memcpy(*pool + off, s, len);
    (*pool)[off + len] = 0;
    *n += len + 1;
    return off;
}

// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
static void byte_map(uint32_t b2u[256]) {
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
    }
}

// ---------------------------------------------------------------------------------------------
// Word counting

static void words_rehash(t2_toktrain *t, uint32_t size) {
    free(t->wt);
    t->wt = t2_calloc(size, sizeof *t->wt);
    t->wt_mask = size - 1;
    for (size_t w = 0; w < t->n_words; w++) {
        uint32_t i = (uint32_t)hash_bytes(t->wpool + t->woff[w], t->wlen[w]) & t->wt_mask;
        while (t->wt[i]) i = (i + 1) & t->wt_mask;
        t->wt[i] = (uint32_t)w + 1;
    }
}

static void word_add(t2_toktrain *t, const char *s, size_t n) {
    if (2 * (t->n_words + 1) > (size_t)t->wt_mask + 1) words_rehash(t, (t->wt_mask + 1) * 2);
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->wt_mask;
    for (; t->wt[i]; i = (i + 1) & t->wt_mask) {
        size_t w = t->wt[i] - 1;
        if (t->wlen[w] == n && memcmp(t->wpool + t->woff[w], s, n) == 0) { t->wfreq[w]++; t->total++; return; }
    }
    size_t cap = t->cap_words;
    t->woff = grow(t->woff, &cap, t->n_words + 1, sizeof *t->woff); cap = t->cap_words;
    t->wlen = grow(t->wlen, &cap, t->n_words + 1, sizeof *t->wlen); cap = t->cap_words;
    t->wfreq = grow(t->wfreq, &cap, t->n_words + 1, sizeof *t->wfreq);
    t->cap_words = cap;
    t->woff[t->n_words] = pool_add(&t->wpool, &t->wpool_n, &t->wpool_cap, s, n);
    t->wlen[t->n_words] = (uint32_t)n;
    t->wfreq[t->n_words] = 1;
    t->wt[i] = (uint32_t)++t->n_words;
    t->total++;
}

t2_toktrain *t2_toktrain_new(void) {
    t2_toktrain *t = t2_calloc(1, sizeof *t);
    int ec; PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)RE_GPT2_WS, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    T2_ASSERT(t->re != NULL);
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);   // best effort: the interpreter otherwise
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    words_rehash(t, 1u << 12);
    return t;
}

void t2_toktrain_free(t2_toktrain *t) {
    if (!t) return;
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t->wpool); free(t->woff); free(t->wlen); free(t->wfreq); free(t->wt);
    free(t->sym); free(t->soff); free(t->slen); free(t->wstamp);
    free(t->tpool); free(t->toff); free(t->tlen); free(t->tt);
    for (int i = 0; i < t->n_pairs; i++) free(t->pairs[i].words);
    free(t->pairs); free(t->pt); free(t->heap); free(t->merges);
    free(t);
}

int t2_toktrain_feed(t2_toktrain *t, const char *text, size_t len) {
    if (t->trained) return t2_fail("tokenizer train: text fed after training");
    char *clean = NULL;
    for (size_t i = 0; i < len;) {   // invalid UTF-8 → U+FFFD (PCRE2 refuses it)
        size_t k = t2_utf8_seq((const unsigned char *)text + i, len - i);
        if (!k) { clean = t2_utf8_sanitize(text, len); text = clean; len = strlen(clean); break; }
        i += k;
    }
    size_t at = 0;
    while (at < len) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK, t->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(t->re, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, t->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            free(clean);
            return t2_fail("tokenizer train: regex match failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        if (ov[1] > ov[0]) word_add(t, text + ov[0], ov[1] - ov[0]);
        at = ov[1] > at ? ov[1] : at + 1;   // the GPT-2 regex matches every character; be safe anyway
        while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80) at++;
    }
    free(clean);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Tokens (mapped strings) and pairs

static int tok_find(const t2_toktrain *t, const char *s, size_t n, uint32_t *slot) {
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->tt_mask;
    for (; t->tt[i]; i = (i + 1) & t->tt_mask) {
        int id = (int)t->tt[i] - 1;
        if (t->tlen[id] == n && memcmp(t->tpool + t->toff[id], s, n) == 0) return id;
    }
    *slot = i;
    return -1;
}

// Id of the token spelled S(n), added if new.
static int tok_add(t2_toktrain *t, const char *s, size_t n) {
    if (2 * (t->n_tok + 1) > (int)t->tt_mask + 1) {
        uint32_t size = (t->tt_mask + 1) * 2;
        free(t->tt);
        t->tt = t2_calloc(size, sizeof *t->tt);
        t->tt_mask = size - 1;
        for (int id = 0; id < t->n_tok; id++) {
            uint32_t i = (uint32_t)hash_bytes(t->tpool + t->toff[id], t->tlen[id]) & t->tt_mask;
            while (t->tt[i]) i = (i + 1) & t->tt_mask;
            t->tt[i] = (uint32_t)id + 1;
        }
    }
    uint32_t slot = 0;
    int id = tok_find(t, s, n, &slot);
    if (id >= 0) return id;
    size_t cap = (size_t)t->cap_tok;
    t->toff = grow(t->toff, &cap, (size_t)t->n_tok + 1, sizeof *t->toff); cap = (size_t)t->cap_tok;
    t->tlen = grow(t->tlen, &cap, (size_t)t->n_tok + 1, sizeof *t->tlen);
    t->cap_tok = (int)cap;
    // the pool may move: copy S first when it points into it
    char tmp[256], *copy = n < sizeof tmp ? tmp : t2_malloc(n);
    memcpy(copy, s, n);
    t->toff[t->n_tok] = pool_add(&t->tpool, &t->tpool_n, &t->tpool_cap, copy, n);
    if (copy != tmp) free(copy);
    t->tlen[t->n_tok] = (uint32_t)n;
    t->tt[slot] = (uint32_t)t->n_tok + 1;
    return t->n_tok++;
}

// memcmp order of the mapped strings of tokens X and Y (a prefix sorts first).
static int tok_cmp(const t2_toktrain *t, int x, int y) {
    if (x == y) return 0;
    size_t nx = t->tlen[x], ny = t->tlen[y];
    int c = memcmp(t->tpool + t->toff[x], t->tpool + t->toff[y], nx < ny ? nx : ny);
    return c ? c : nx < ny ? -1 : nx > ny ? 1 : 0;
}

// Heap order: higher count first, then the smaller (left, right) strings.
static int hent_before(const t2_toktrain *t, hent_t x, hent_t y) {
    if (x.count != y.count) return x.count > y.count;
    const pair_t *p = &t->pairs[x.pair], *q = &t->pairs[y.pair];
    int c = tok_cmp(t, p->a, q->a);
    return c ? c < 0 : tok_cmp(t, p->b, q->b) < 0;
}

static void heap_push(t2_toktrain *t, int32_t pair) {
    t->heap = grow(t->heap, &t->heap_cap, t->heap_n + 1, sizeof *t->heap);
    hent_t x = {t->pairs[pair].count, pair};
    size_t i = t->heap_n++;
    while (i > 0 && hent_before(t, x, t->heap[(i - 1) / 2])) { t->heap[i] = t->heap[(i - 1) / 2]; i = (i - 1) / 2; }
    t->heap[i] = x;
}

static hent_t heap_pop(t2_toktrain *t) {
    hent_t top = t->heap[0], x = t->heap[--t->heap_n];
    size_t i = 0, n = t->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hent_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!hent_before(t, t->heap[c], x)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = x;
    return top;
}

static int32_t pair_get(t2_toktrain *t, int32_t a, int32_t b) {   // index, created with count 0
    if (2 * (t->n_pairs + 1) > (int)t->pt_mask + 1) {
        uint32_t size = t->pt_mask ? (t->pt_mask + 1) * 2 : 1u << 14;
        free(t->pt);
        t->pt = t2_calloc(size, sizeof *t->pt);
        t->pt_mask = size - 1;
        for (int p = 0; p < t->n_pairs; p++) {
            uint64_t key = ((uint64_t)(uint32_t)t->pairs[p].a << 32) | (uint32_t)t->pairs[p].b;
            uint32_t i = (uint32_t)hash_u64(key) & t->pt_mask;
            while (t->pt[i]) i = (i + 1) & t->pt_mask;
            t->pt[i] = (uint32_t)p + 1;
        }
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)hash_u64(key) & t->pt_mask;
    for (; t->pt[i]; i = (i + 1) & t->pt_mask) {
        const pair_t *p = &t->pairs[t->pt[i] - 1];
        if (p->a == a && p->b == b) return (int32_t)t->pt[i] - 1;
    }
    size_t cap = (size_t)t->cap_pairs;
    t->pairs = grow(t->pairs, &cap, (size_t)t->n_pairs + 1, sizeof *t->pairs);
    t->cap_pairs = (int)cap;
    t->pairs[t->n_pairs] = (pair_t){0, a, b, NULL, 0, 0, 0, 0};
    t->pt[i] = (uint32_t)t->n_pairs + 1;
    return t->n_pairs++;
}

static void pair_add_word(pair_t *p, int32_t w) {
    if (p->nw && p->words[p->nw - 1] == w) return;
    size_t cap = (size_t)p->capw;
    p->words = grow(p->words, &cap, (size_t)p->nw + 1, sizeof *p->words);
    p->capw = (int)cap;
    p->words[p->nw++] = w;
}

static int cmp_delta(const void *x, const void *y) {
    uint64_t a = ((const delta_t *)x)->key, b = ((const delta_t *)y)->key;
    return a < b ? -1 : a > b;
}

// ---------------------------------------------------------------------------------------------
// Training

t2_toktrain_params t2_toktrain_defaults(void) {
    t2_toktrain_params p;
    memset(&p, 0, sizeof p);
    p.min_frequency = 2;
    p.add_bos = 1;
    p.model_max_length = 2048;
    return p;
}

static int check_params(const t2_toktrain_params *p) {
    for (int i = 0; i < p->n_specials; i++) {
        if (!p->specials[i] || !p->specials[i][0]) return t2_fail("tokenizer train: special token %d is empty", i + 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(p->specials[i], p->specials[j]))
                return t2_fail("tokenizer train: special token \"%s\" is given twice", p->specials[i]);
    }
    const char *roles[4] = {p->bos, p->eos, p->pad, p->unk}, *names[4] = {"bos", "eos", "pad", "unk"};
    for (int r = 0; r < 4; r++) {
        if (!roles[r]) continue;
        int found = 0;
        for (int i = 0; i < p->n_specials; i++) found |= !strcmp(roles[r], p->specials[i]);
        if (!found) return t2_fail("tokenizer train: %s token \"%s\" is not one of the special tokens", names[r], roles[r]);
    }
    if (p->vocab_size < 256 + p->n_specials)
        return t2_fail("tokenizer train: vocab size %d is smaller than 256 byte tokens + %d special tokens",
                       p->vocab_size, p->n_specials);
    return 0;
}

// Replace every (A, B) in word W by N and move the pair counts by the word's difference.
static void merge_word(t2_toktrain *t, int32_t w, int32_t A, int32_t B, int32_t N, uint32_t step,
                       delta_t **dl, size_t *dcap, int32_t **touched, size_t *tn, size_t *tcap) {
    int32_t *s = t->sym + t->soff[w];
    uint32_t n = t->slen[w];
    int64_t f = t->wfreq[w];
    uint32_t i, j;
    for (i = 0; i + 1 < n; i++) if (s[i] == A && s[i + 1] == B) break;
    if (i + 1 >= n) return;                    // a stale entry of the word list
    *dl = grow(*dl, dcap, 2 * (size_t)n, sizeof **dl);
    size_t k = 0;
    for (i = 0; i + 1 < n; i++) (*dl)[k++] = (delta_t){((uint64_t)(uint32_t)s[i] << 32) | (uint32_t)s[i + 1], -f};
    for (i = j = 0; i < n; j++) {
        if (i + 1 < n && s[i] == A && s[i + 1] == B) { s[j] = N; i += 2; }
        else s[j] = s[i++];
    }
    t->slen[w] = n = j;
    for (i = 0; i + 1 < n; i++) (*dl)[k++] = (delta_t){((uint64_t)(uint32_t)s[i] << 32) | (uint32_t)s[i + 1], f};
    delta_t *d = *dl;
    if (k > 48) qsort(d, k, sizeof *d, cmp_delta);
    else for (size_t x = 1; x < k; x++) {   // words are short: insertion sort
        delta_t v = d[x];
        size_t y = x;
        for (; y > 0 && d[y - 1].key > v.key; y--) d[y] = d[y - 1];
        d[y] = v;
    }
    for (size_t x = 0; x < k;) {
        uint64_t key = d[x].key;
        int64_t sum = 0;
        for (; x < k && d[x].key == key; x++) sum += d[x].delta;
        if (!sum) continue;
        int32_t p = pair_get(t, (int32_t)(key >> 32), (int32_t)(uint32_t)key);
        pair_t *pp = &t->pairs[p];
        pp->count += sum;
        if (sum > 0) {
            pair_add_word(pp, w);
            if (pp->stamp != step) {
                pp->stamp = step;
                *touched = grow(*touched, tcap, *tn + 1, sizeof **touched);
                (*touched)[(*tn)++] = p;
            }
        }
    }
}

int t2_toktrain_run(t2_toktrain *t, const t2_toktrain_params *p) {
    if (t->trained) return t2_fail("tokenizer train: already trained");
    if (check_params(p) != 0) return -1;
    if (t->total == 0) return t2_fail("tokenizer train: the corpus is empty (no text to learn from)");
    t->trained = 1;
    // the 256 byte tokens, id = byte value
    uint32_t b2u[256];
    byte_map(b2u);
    t->tt = t2_calloc(1024, sizeof *t->tt);
    t->tt_mask = 1023;
    for (int b = 0; b < 256; b++) {
        char u[2] = {(char)(0xC0 | (b2u[b] >> 6)), (char)(0x80 | (b2u[b] & 0x3F))};   // b2u < 0x800
        if (b2u[b] < 0x80) { u[0] = (char)b2u[b]; tok_add(t, u, 1); }
        else tok_add(t, u, 2);
    }
    // words as byte symbols, and the initial pair table
    t->soff = t2_malloc(t->n_words * sizeof *t->soff);
    t->slen = t2_malloc(t->n_words * sizeof *t->slen);
    t->wstamp = t2_calloc(t->n_words, sizeof *t->wstamp);
    size_t nsym = 0;
    for (size_t w = 0; w < t->n_words; w++) { t->soff[w] = nsym; t->slen[w] = t->wlen[w]; nsym += t->wlen[w]; }
    t->sym = t2_malloc((nsym ? nsym : 1) * sizeof *t->sym);
    for (size_t w = 0; w < t->n_words; w++) {
        const unsigned char *s = (const unsigned char *)t->wpool + t->woff[w];
        int32_t *o = t->sym + t->soff[w];
        for (uint32_t i = 0; i < t->wlen[w]; i++) o[i] = s[i];
        for (uint32_t i = 0; i + 1 < t->wlen[w]; i++) {
            int32_t q = pair_get(t, o[i], o[i + 1]);
            t->pairs[q].count += t->wfreq[w];
            pair_add_word(&t->pairs[q], (int32_t)w);
        }
    }
    for (int q = 0; q < t->n_pairs; q++) heap_push(t, q);

    int budget = p->vocab_size - p->n_specials - 256, done = 0;
    delta_t *dl = NULL; size_t dcap = 0;
    int32_t *touched = NULL; size_t tn = 0, tcap = 0;
    char *cat = NULL; size_t ccap = 0;
    uint32_t step = 0;
    while (t->n_tok - 256 < budget && t->heap_n) {
        hent_t top = heap_pop(t);
        pair_t *pp = &t->pairs[top.pair];
        if (pp->count <= 0 || pp->count > top.count) continue;          // gone, or a newer entry exists
        if (pp->count < top.count) { heap_push(t, top.pair); continue; } // stale: re-rank
        if (pp->count < p->min_frequency) break;
        int32_t A = pp->a, B = pp->b;
        size_t la = t->tlen[A], lb = t->tlen[B];
        cat = grow(cat, &ccap, la + lb, 1);
        memcpy(cat, t->tpool + t->toff[A], la);
        memcpy(cat + la, t->tpool + t->toff[B], lb);
        int32_t N = tok_add(t, cat, la + lb);
        if (!pp->merged) {   // a pair revived by a reused token is merged again but listed once
            size_t c = (size_t)t->cap_merges;
            t->merges = grow(t->merges, &c, 2 * ((size_t)t->n_merges + 1), sizeof *t->merges);
            t->cap_merges = (int)c;
            t->merges[2 * t->n_merges] = A;
            t->merges[2 * t->n_merges + 1] = B;
            t->n_merges++;
            pp->merged = 1;
        }
        step++;
        int32_t *words = pp->words;
        int nw = pp->nw;
        pp->words = NULL; pp->nw = pp->capw = 0;
        tn = 0;
        for (int k = 0; k < nw; k++) {
            int32_t w = words[k];
            if (t->wstamp[w] == step) continue;
            t->wstamp[w] = step;
            merge_word(t, w, A, B, N, step, &dl, &dcap, &touched, &tn, &tcap);
        }
        free(words);
        for (size_t k = 0; k < tn; k++) if (t->pairs[touched[k]].count > 0) heap_push(t, touched[k]);
        done = t->n_tok - 256;
        if (p->progress && (t->n_merges % 100 == 0)) p->progress(p->progress_ctx, done, budget);
    }
    if (p->progress) p->progress(p->progress_ctx, done, budget);
    free(dl); free(touched); free(cat);
    return 0;
}

size_t t2_toktrain_n_words(const t2_toktrain *t, size_t *total) { if (total) *total = (size_t)t->total; return t->n_words; }
int t2_toktrain_n_merges(const t2_toktrain *t) { return t->n_merges; }
int t2_toktrain_n_tokens(const t2_toktrain *t) { return t->n_tok; }
void t2_toktrain_merge(const t2_toktrain *t, int i, const char **left, const char **right) {
    T2_ASSERT(i >= 0 && i < t->n_merges);
    *left = t->tpool + t->toff[t->merges[2 * i]];
    *right = t->tpool + t->toff[t->merges[2 * i + 1]];
}

// ---------------------------------------------------------------------------------------------
// Writing the Hugging Face files

static cJSON *added_token(int id, const char *content, int with_id) {
    cJSON *o = cJSON_CreateObject();
    if (with_id) cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "content", content);
    cJSON_AddBoolToObject(o, "single_word", 0);
    cJSON_AddBoolToObject(o, "lstrip", 0);
    cJSON_AddBoolToObject(o, "rstrip", 0);
    cJSON_AddBoolToObject(o, "normalized", 0);
    cJSON_AddBoolToObject(o, "special", 1);
    return o;
}

static cJSON *byte_level(int prefix, int trim, int regex) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", prefix);
    cJSON_AddBoolToObject(o, "trim_offsets", trim);
    cJSON_AddBoolToObject(o, "use_regex", regex);
    return o;
}

static cJSON *template_item(const char *kind, const char *id, int type_id) {   // {"SpecialToken": {...}}
    cJSON *o = cJSON_CreateObject(), *in = cJSON_AddObjectToObject(o, kind);
    cJSON_AddStringToObject(in, "id", id);
    cJSON_AddNumberToObject(in, "type_id", type_id);
    return o;
}

static cJSON *bos_template(const char *bos, int bos_id) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(o, "single"), *pair = cJSON_AddArrayToObject(o, "pair");
    cJSON_AddItemToArray(single, template_item("SpecialToken", bos, 0));
    cJSON_AddItemToArray(single, template_item("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, template_item("SpecialToken", bos, 0));
    cJSON_AddItemToArray(pair, template_item("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, template_item("SpecialToken", bos, 1));
    cJSON_AddItemToArray(pair, template_item("Sequence", "B", 1));
    cJSON *st = cJSON_AddObjectToObject(o, "special_tokens"), *b = cJSON_AddObjectToObject(st, bos);
    cJSON_AddStringToObject(b, "id", bos);
    cJSON_AddItemToObject(b, "ids", cJSON_CreateIntArray(&bos_id, 1));
    cJSON_AddItemToObject(b, "tokens", cJSON_CreateStringArray(&bos, 1));
    return o;
}

static void add_str_or_null(cJSON *o, const char *key, const char *s) {
    if (s) cJSON_AddStringToObject(o, key, s);
    else cJSON_AddNullToObject(o, key);
}

static int save_json(const char *dir, const char *name, cJSON *doc) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, name) != 0) { cJSON_Delete(doc); return t2_fail("tokenizer train: path too long: %s/%s", dir, name); }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) return t2_fail("tokenizer train: %s: out of memory printing JSON", path);
    size_t n = strlen(text);
    text[n] = '\n';   // cJSON_Print's buffer is exactly n+1: replace the NUL, write n+1 bytes
    int rc = t2_write_file_atomic(path, text, n + 1);
    cJSON_free(text);
    if (rc != 0) t2_error_prefix("tokenizer train: writing %s: ", path);
    return rc;
}

int t2_toktrain_save(const t2_toktrain *t, const t2_toktrain_params *p, const char *dir) {
    if (!t->trained) return t2_fail("tokenizer train: nothing trained to save");
    if (check_params(p) != 0) return -1;
    if (t2_mkdirs(dir) != 0) { t2_error_prefix("tokenizer train: creating %s: ", dir); return -1; }
    int n_bpe = t->n_tok, bos_id = -1;
    for (int i = 0; i < p->n_specials; i++) if (p->bos && !strcmp(p->bos, p->specials[i])) bos_id = n_bpe + i;

    // tokenizer.json
    cJSON *tj = cJSON_CreateObject();
    cJSON_AddStringToObject(tj, "version", "1.0");
    cJSON_AddNullToObject(tj, "truncation");
    cJSON_AddNullToObject(tj, "padding");
    cJSON *added = cJSON_AddArrayToObject(tj, "added_tokens");
    for (int i = 0; i < p->n_specials; i++) cJSON_AddItemToArray(added, added_token(n_bpe + i, p->specials[i], 1));
    cJSON_AddNullToObject(tj, "normalizer");
    cJSON_AddItemToObject(tj, "pre_tokenizer", byte_level(0, 1, 1));
    if (p->add_bos && bos_id >= 0) cJSON_AddItemToObject(tj, "post_processor", bos_template(p->bos, bos_id));
    else cJSON_AddItemToObject(tj, "post_processor", byte_level(1, 0, 1));
    cJSON_AddItemToObject(tj, "decoder", byte_level(1, 1, 1));
    cJSON *m = cJSON_AddObjectToObject(tj, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", 0);
    cJSON_AddBoolToObject(m, "byte_fallback", 0);
    cJSON_AddBoolToObject(m, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(m, "vocab");
    for (int id = 0; id < n_bpe; id++) cJSON_AddNumberToObject(vocab, t->tpool + t->toff[id], id);
    cJSON *merges = cJSON_AddArrayToObject(m, "merges");
    char *line = NULL; size_t lcap = 0;
    for (int i = 0; i < t->n_merges; i++) {
        int32_t a = t->merges[2 * i], b = t->merges[2 * i + 1];
        size_t la = t->tlen[a], lb = t->tlen[b];
        line = grow(line, &lcap, la + lb + 2, 1);
        memcpy(line, t->tpool + t->toff[a], la);
        line[la] = ' ';
        memcpy(line + la + 1, t->tpool + t->toff[b], lb);
        line[la + lb + 1] = 0;
        cJSON_AddItemToArray(merges, cJSON_CreateString(line));
    }
    free(line);
    if (save_json(dir, "tokenizer.json", tj) != 0) return -1;

    // tokenizer_config.json
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddBoolToObject(tc, "add_bos_token", p->add_bos && bos_id >= 0);
    cJSON_AddBoolToObject(tc, "add_eos_token", 0);
    cJSON *dec = cJSON_AddObjectToObject(tc, "added_tokens_decoder");
    for (int i = 0; i < p->n_specials; i++) {
        char key[32];
        snprintf(key, sizeof key, "%d", n_bpe + i);
        cJSON_AddItemToObject(dec, key, added_token(n_bpe + i, p->specials[i], 0));
    }
    add_str_or_null(tc, "bos_token", p->bos);
    add_str_or_null(tc, "eos_token", p->eos);
    add_str_or_null(tc, "pad_token", p->pad);
    add_str_or_null(tc, "unk_token", p->unk);
    cJSON_AddBoolToObject(tc, "clean_up_tokenization_spaces", 0);
    cJSON_AddNumberToObject(tc, "model_max_length", p->model_max_length > 0 ? p->model_max_length : 2048);
    cJSON_AddStringToObject(tc, "tokenizer_class", "PreTrainedTokenizerFast");
    if (p->chat_template) cJSON_AddStringToObject(tc, "chat_template", p->chat_template);
    if (save_json(dir, "tokenizer_config.json", tc) != 0) return -1;

    // special_tokens_map.json
    cJSON *sm = cJSON_CreateObject();
    const char *roles[4] = {p->bos, p->eos, p->pad, p->unk}, *names[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    for (int r = 0; r < 4; r++) if (roles[r]) cJSON_AddStringToObject(sm, names[r], roles[r]);
    cJSON *extra = cJSON_AddArrayToObject(sm, "additional_special_tokens");
    for (int i = 0; i < p->n_specials; i++) {
        int role = 0;
        for (int r = 0; r < 4; r++) role |= roles[r] && !strcmp(roles[r], p->specials[i]);
        if (!role) cJSON_AddItemToArray(extra, cJSON_CreateString(p->specials[i]));
    }
    return save_json(dir, "special_tokens_map.json", sm);
}
