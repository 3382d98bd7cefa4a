// tokenizer.c — Hugging Face BPE tokenizers for t2's language models (tokenizer.h). Reads
// tokenizer.json (or a GPT-2/Qwen2 style vocab.json + merges.txt directory), matches added/special
// tokens first, normalises (NFC, Prepend/Replace), pre-tokenises with the checkpoint's regex (PCRE2
// with Unicode properties), runs BPE by merge rank — byte-level (Llama-3, Qwen2) or SentencePiece
// style with byte fallback (Llama-2, Vicuna) — and decodes ids back to bytes.
// Not here: WordPiece/Unigram models, offsets, pair encodings, BPE dropout, training, and chat
// templates (language/chat.c renders them; this file only hands out the template string).
//
// Pipeline of one encode (the order of HF tokenizers' Tokenizer::encode):
//   text → split on added tokens (leftmost-longest, lstrip/rstrip absorb whitespace)
//        → each remaining segment: normalizer steps → pre-tokenizer steps (string edits and regex
//          splits, applied piece by piece) → BPE per piece → ids
//        → post-processor's fixed prefix/suffix ids (BOS) when add_special.
// Known differences from HF, none of which the checkpoints we read rely on: all added tokens are
// matched on the raw text (HF matches normalized=true ones after normalising), single_word is
// ignored, a regex's empty matches are skipped, decode returns raw bytes (no U+FFFD for a partial
// character), and Unicode tables are PCRE2's / utf8proc's.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "language/tokenizer.h"
#include "core/error.h"
#include "core/util.h"
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_STEPS 16
#define MAX_FIXED 8                  // post-processor prefix/suffix ids
#define NO_PIECE UINT32_MAX
#define FLAG_SPECIAL 1
#define FLAG_ADDED 2

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex) and Qwen2's (for vocab.json layouts; formats.md).
static const char *RE_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *RE_QWEN2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_PREPEND, NORM_REPLACE, NORM_REPLACE_RE, NORM_LOWER };
enum { PT_SPLIT, PT_PREFIX, PT_REPLACE };
enum { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT };

typedef struct { int kind; char *a, *b; pcre2_code *re; } norm_step;     // a: prepend / pattern, b: content
typedef struct { int kind, behavior, first_only; char *a, *b; pcre2_code *re; } pt_step;
typedef struct { uint32_t off, len; int32_t id; } vent;                  // vocab hash slot, id -1 = empty
typedef struct { uint64_t key; int32_t rank, id; } ment;                 // merge slot: key left<<32|right
typedef struct { uint32_t off, len; int32_t id; uint8_t special, lstrip, rstrip; } added_tok;

struct t2_tokenizer {
    char *pool; size_t pool_n, pool_cap;   // every string, NUL-terminated, addressed by offset
    vent *vt; uint32_t vt_mask;            // model vocabulary: string → id
    ment *mt; uint32_t mt_mask;            // merges: (left, right) → (rank, merged id)
    int n_vocab, n_merges;
    added_tok *added; int n_added, cap_added;
    int *added_order;                      // (n_added) sorted by first byte, then longest first
    int added_bucket[257];                 // added_order range of each first byte
    int n_ids;                             // highest id + 1
    uint32_t *piece_off, *piece_len;       // (n_ids) string of each id; len NO_PIECE = hole
    uint8_t *flags;                        // (n_ids) FLAG_*
    int16_t *byteval;                      // (n_ids) byte of a "<0xXX>" piece (ByteFallback decoder), -1
    // model
    int byte_level, ignore_merges, byte_fallback, fuse_unk, unk_id;
    int32_t byte_id[256];                  // byte-level: id of each byte's mapped character
    int32_t fallback_id[256];              // SentencePiece: id of "<0xXX>"
    uint32_t b2u[256];                     // GPT-2 bytes_to_unicode
    int16_t u2b[512];                      // its inverse (code points < 512), -1 elsewhere
    norm_step norm[MAX_STEPS]; int n_norm;
    pt_step pt[MAX_STEPS]; int n_pt;
    // decoder
    int dec_bytelevel, dec_bytefallback, dec_strip, dec_metaspace, dec_ms_first;
    char *dec_from, *dec_to, *dec_ms;
    // post-processor and special ids
    int32_t pre_ids[MAX_FIXED], post_ids[MAX_FIXED]; int n_pre, n_post;
    int bos; int32_t *eos; int n_eos;
    char *bos_text, *eos_text, *chat_template;
};

// ---------------------------------------------------------------------------------------------
// UTF-8, whitespace, hashing, buffers

static int utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static uint32_t utf8_get(const char *s, int *len) {   // S is valid UTF-8
    const unsigned char *u = (const unsigned char *)s;
    int n = utf8_len(u[0]);
    uint32_t c = n == 1 ? u[0] : n == 2 ? (u[0] & 0x1Fu) : n == 3 ? (u[0] & 0x0Fu) : (u[0] & 0x07u);
    for (int i = 1; i < n; i++) c = (c << 6) | (u[i] & 0x3Fu);
    *len = n;
    return c;
}

static int utf8_put(uint32_t c, char *o) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

// Unicode White_Space (Rust's char::is_whitespace, which HF uses for lstrip/rstrip).
static int is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static uint64_t hash_str(const char *s, size_t n) {   // FNV-1a
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {                // splitmix64 finaliser
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint32_t table_size(size_t n) { uint32_t c = 16; while (c < 2 * n + 1) c *= 2; return c; }

typedef struct { char *p; size_t n, cap; } buf_t;

static void buf_need(buf_t *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->n + extra + 1) c *= 2;
    char *p = t2_malloc(c);
    if (b->n) memcpy(p, b->p, b->n);
    free(b->p);
    b->p = p; b->cap = c;
}
static void buf_put(buf_t *b, const char *s, size_t n) { buf_need(b, n); if (n) memcpy(b->p + b->n, s, n); b->n += n; b->p[b->n] = 0; }

// ---------------------------------------------------------------------------------------------
// Tables: string pool, vocabulary hash, merge hash, added tokens

static uint32_t pool_add(t2_tokenizer *t, const char *s, size_t n) {
    if (t->pool_n + n + 1 > t->pool_cap) {
        size_t c = t->pool_cap ? t->pool_cap : 1 << 16;
        while (c < t->pool_n + n + 1) c *= 2;
        char *p = t2_malloc(c);
        if (t->pool_n) memcpy(p, t->pool, t->pool_n);
        free(t->pool);
        t->pool = p; t->pool_cap = c;
    }
    uint32_t off = (uint32_t)t->pool_n;
    memcpy(t->pool + off, s, n);
    t->pool[off + n] = 0;
    t->pool_n += n + 1;
    return off;
}

static int32_t vocab_get(const t2_tokenizer *t, const char *s, size_t n) {
    if (!t->vt) return -1;
    for (uint32_t i = (uint32_t)hash_str(s, n) & t->vt_mask;; i = (i + 1) & t->vt_mask) {
        const vent *v = &t->vt[i];
        if (v->id < 0) return -1;
        if (v->len == n && memcmp(t->pool + v->off, s, n) == 0) return v->id;
    }
}

static void vocab_put(t2_tokenizer *t, const char *s, size_t n, int32_t id) {
    uint32_t i = (uint32_t)hash_str(s, n) & t->vt_mask;
    for (; t->vt[i].id >= 0; i = (i + 1) & t->vt_mask)
        if (t->vt[i].len == n && memcmp(t->pool + t->vt[i].off, s, n) == 0) { t->vt[i].id = id; return; }
    t->vt[i] = (vent){pool_add(t, s, n), (uint32_t)n, id};
    t->n_vocab++;
}

static const ment *merge_get(const t2_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = (uint32_t)hash_u64(key) & t->mt_mask;; i = (i + 1) & t->mt_mask) {
        const ment *m = &t->mt[i];
        if (m->rank < 0) return NULL;
        if (m->key == key) return m;
    }
}

static void merge_put(t2_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)hash_u64(key) & t->mt_mask;
    while (t->mt[i].rank >= 0 && t->mt[i].key != key) i = (i + 1) & t->mt_mask;
    if (t->mt[i].rank < 0) t->n_merges++;
    t->mt[i] = (ment){key, rank, id};   // a repeated pair keeps its last rank, as HF's map does
}

static void added_add(t2_tokenizer *t, const char *s, int id, int special, int lstrip, int rstrip) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) { t->added[i].special |= (uint8_t)special; return; }
    if (t->n_added == t->cap_added) {
        t->cap_added = t->cap_added ? 2 * t->cap_added : 64;
        added_tok *a = t2_malloc((size_t)t->cap_added * sizeof *a);
        if (t->n_added) memcpy(a, t->added, (size_t)t->n_added * sizeof *a);
        free(t->added);
        t->added = a;
    }
    size_t n = strlen(s);
    t->added[t->n_added++] = (added_tok){pool_add(t, s, n), (uint32_t)n, id, (uint8_t)special,
                                         (uint8_t)lstrip, (uint8_t)rstrip};
}

// Contract (tokenizer.h).
int t2_tok_id(const t2_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->pool + t->added[i].off, text, n) == 0) return t->added[i].id;
    return vocab_get(t, text, n);
}

// ---------------------------------------------------------------------------------------------
// Loading tokenizer.json's parts. F names the file for messages.

// Rewrite \s / \S to exactly Unicode White_Space (PCRE2's \s lacks U+0085 and has U+180E; Python's
// `regex` and HF's Oniguruma use White_Space); the rest is copied as is. Returns a malloc'd pattern.
static char *fix_pattern(const char *p) {
    static const char WS_IN[] = "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
    size_t n = strlen(p);
    char *o = t2_malloc(n * 48 + 1), *w = o;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            char c = p[i + 1];
            if (c == 's') w += sprintf(w, in_class ? "%s" : "[%s]", WS_IN);
            else if (c == 'S' && !in_class) w += sprintf(w, "[^%s]", WS_IN);
            else { *w++ = p[i]; *w++ = c; }
            i++;
        } else if (!in_class && p[i] == '[') {
            in_class = 1;
            *w++ = p[i];
            if (i + 1 < n && p[i + 1] == '^') *w++ = p[++i];
            if (i + 1 < n && p[i + 1] == ']') *w++ = p[++i];   // leading ']' is a literal
        } else if (in_class && p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *e = strstr(p + i, ":]");
            size_t k = e ? (size_t)(e - (p + i)) + 2 : 1;
            memcpy(w, p + i, k); w += k; i += k - 1;
        } else {
            if (in_class && p[i] == ']') in_class = 0;
            *w++ = p[i];
        }
    }
    *w = 0;
    return o;
}

// Compile PAT (LITERAL: match the text itself) once, JIT if available; NULL + error naming F.
static pcre2_code *compile_re(const char *f, const char *what, const char *pat, int literal) {
    char *fixed = literal ? NULL : fix_pattern(pat);
    int ec; PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(literal ? pat : fixed), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0), &ec, &eo, NULL);
    free(fixed);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return t2_fail_null("%s: %s regex /%.300s/ does not compile (offset %zu): %s", f, what, pat,
                            (size_t)eo, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   // best effort: falls back to the interpreter
    return re;
}

// {"String": s} or {"Regex": r} → compiled regex.
static pcre2_code *compile_pattern(const char *f, const char *what, const cJSON *pat) {
    const char *s = t2_json_str(pat, "String", NULL), *r = t2_json_str(pat, "Regex", NULL);
    if (!s && !r) return t2_fail_null("%s: %s pattern is neither {\"String\"} nor {\"Regex\"}", f, what);
    return compile_re(f, what, s ? s : r, s != NULL);
}

static const char *json_type(const cJSON *o) { return t2_json_str(o, "type", "(no type)"); }

static int load_normalizer(t2_tokenizer *t, const char *f, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *ty = json_type(n);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(n, "normalizers"))
            if (load_normalizer(t, f, it) != 0) return -1;
        return 0;
    }
    if (t->n_norm == MAX_STEPS) return t2_fail("%s: too many normalizer steps", f);
    norm_step *s = &t->norm[t->n_norm];
    memset(s, 0, sizeof *s);
    if (!strcmp(ty, "NFC")) s->kind = NORM_NFC;
    else if (!strcmp(ty, "NFD")) s->kind = NORM_NFD;
    else if (!strcmp(ty, "NFKC")) s->kind = NORM_NFKC;
    else if (!strcmp(ty, "NFKD")) s->kind = NORM_NFKD;
    else if (!strcmp(ty, "Lowercase")) s->kind = NORM_LOWER;
    else if (!strcmp(ty, "Prepend")) {
        s->kind = NORM_PREPEND;
        s->a = t2_strdup(t2_json_str(n, "prepend", ""));
    } else if (!strcmp(ty, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const char *str = t2_json_str(pat, "String", NULL);
        s->b = t2_strdup(t2_json_str(n, "content", ""));
        if (str) { s->kind = NORM_REPLACE; s->a = t2_strdup(str); }
        else {
            s->kind = NORM_REPLACE_RE;
            if (!(s->re = compile_pattern(f, "normalizer Replace", pat))) { free(s->b); return -1; }
        }
    } else return t2_fail("%s: normalizer \"%s\" is not supported", f, ty);
    t->n_norm++;
    return 0;
}

static int add_pt(t2_tokenizer *t, const char *f, pt_step s) {
    if (t->n_pt == MAX_STEPS) { free(s.a); free(s.b); if (s.re) pcre2_code_free(s.re); return t2_fail("%s: too many pre-tokenizer steps", f); }
    t->pt[t->n_pt++] = s;
    return 0;
}

// HF prepend_scheme ("always" | "first" | "never"), or the older add_prefix_space boolean.
static int prepend_scheme(const cJSON *o) {
    const char *s = t2_json_str(o, "prepend_scheme", NULL);
    if (s) return !strcmp(s, "always") ? 1 : !strcmp(s, "first") ? 2 : 0;
    return t2_json_bool(o, "add_prefix_space", 1) ? 1 : 0;
}

static int load_pretok(t2_tokenizer *t, const char *f, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *ty = json_type(p);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"))
            if (load_pretok(t, f, it) != 0) return -1;
        return 0;
    }
    if (!strcmp(ty, "Split")) {
        const char *b = t2_json_str(p, "behavior", "Isolated");
        int beh = !strcmp(b, "Isolated") ? SPLIT_ISOLATED : !strcmp(b, "Removed") ? SPLIT_REMOVED
                : !strcmp(b, "MergedWithPrevious") ? SPLIT_MERGED_PREV : !strcmp(b, "MergedWithNext") ? SPLIT_MERGED_NEXT : -1;
        if (beh < 0) return t2_fail("%s: Split behavior \"%s\" is not supported", f, b);
        if (t2_json_bool(p, "invert", 0)) return t2_fail("%s: Split with invert is not supported", f);
        pcre2_code *re = compile_pattern(f, "pre_tokenizer Split", cJSON_GetObjectItemCaseSensitive(p, "pattern"));
        if (!re) return -1;
        return add_pt(t, f, (pt_step){PT_SPLIT, beh, 0, NULL, NULL, re});
    }
    if (!strcmp(ty, "ByteLevel")) {
        t->byte_level = 1;
        if (t2_json_bool(p, "add_prefix_space", 1) && add_pt(t, f, (pt_step){PT_PREFIX, 0, 0, t2_strdup(" "), NULL, NULL}) != 0)
            return -1;
        if (!t2_json_bool(p, "use_regex", 1)) return 0;
        pcre2_code *re = compile_re(f, "ByteLevel", RE_GPT2, 0);
        return re ? add_pt(t, f, (pt_step){PT_SPLIT, SPLIT_ISOLATED, 0, NULL, NULL, re}) : -1;
    }
    if (!strcmp(ty, "Metaspace")) {
        const char *r = t2_json_str(p, "replacement", "\xE2\x96\x81");
        int scheme = prepend_scheme(p);
        if (add_pt(t, f, (pt_step){PT_REPLACE, 0, 0, t2_strdup(" "), t2_strdup(r), NULL}) != 0) return -1;
        if (scheme && add_pt(t, f, (pt_step){PT_PREFIX, 0, scheme == 2, t2_strdup(r), NULL, NULL}) != 0) return -1;
        if (!t2_json_bool(p, "split", 1)) return 0;
        pcre2_code *re = compile_re(f, "Metaspace", r, 1);
        return re ? add_pt(t, f, (pt_step){PT_SPLIT, SPLIT_MERGED_NEXT, 0, NULL, NULL, re}) : -1;
    }
    if (!strcmp(ty, "Digits")) {
        pcre2_code *re = compile_re(f, "Digits", t2_json_bool(p, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+", 0);
        return re ? add_pt(t, f, (pt_step){PT_SPLIT, SPLIT_ISOLATED, 0, NULL, NULL, re}) : -1;
    }
    return t2_fail("%s: pre_tokenizer \"%s\" is not supported", f, ty);
}

static int load_decoder(t2_tokenizer *t, const char *f, const cJSON *d) {
    if (!d || cJSON_IsNull(d)) return 0;
    const char *ty = json_type(d);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "decoders"))
            if (load_decoder(t, f, it) != 0) return -1;
    } else if (!strcmp(ty, "ByteLevel")) t->dec_bytelevel = 1;
    else if (!strcmp(ty, "ByteFallback")) t->dec_bytefallback = 1;
    else if (!strcmp(ty, "Fuse")) {}
    else if (!strcmp(ty, "Replace")) {
        const char *s = t2_json_str(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String", NULL);
        if (!s || t->dec_from) return t2_fail("%s: decoder Replace: only one, with a String pattern, is supported", f);
        t->dec_from = t2_strdup(s);
        t->dec_to = t2_strdup(t2_json_str(d, "content", ""));
    } else if (!strcmp(ty, "Strip")) {
        if (strcmp(t2_json_str(d, "content", " "), " ") != 0) return t2_fail("%s: decoder Strip: only content \" \" is supported", f);
        t->dec_strip = (int)t2_json_num(d, "start", 0);
    } else if (!strcmp(ty, "Metaspace")) {
        free(t->dec_ms);
        t->dec_metaspace = 1;
        t->dec_ms = t2_strdup(t2_json_str(d, "replacement", "\xE2\x96\x81"));
        t->dec_ms_first = prepend_scheme(d) != 0;
    } else return t2_fail("%s: decoder \"%s\" is not supported", f, ty);
    return 0;
}

static int add_fixed(t2_tokenizer *t, const char *f, int after, int id) {
    int *n = after ? &t->n_post : &t->n_pre;
    if (*n == MAX_FIXED) return t2_fail("%s: post_processor adds too many tokens", f);
    (after ? t->post_ids : t->pre_ids)[(*n)++] = id;
    return 0;
}

static int load_postproc(t2_tokenizer *t, const char *f, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *ty = json_type(p);
    if (!strcmp(ty, "ByteLevel")) return 0;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "processors"))
            if (load_postproc(t, f, it) != 0) return -1;
        return 0;
    }
    if (!strcmp(ty, "TemplateProcessing")) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(p, "special_tokens"), *it;
        int after = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "single")) {
            if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) { after = 1; continue; }
            const char *name = t2_json_str(cJSON_GetObjectItemCaseSensitive(it, "SpecialToken"), "id", NULL);
            if (!name) return t2_fail("%s: post_processor template item is neither SpecialToken nor Sequence", f);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sp, name), "ids"), *x;
            if (cJSON_IsArray(ids)) {
                cJSON_ArrayForEach(x, ids) if (add_fixed(t, f, after, x->valueint) != 0) return -1;
            } else {
                int id = t2_tok_id(t, name);
                if (id < 0) return t2_fail("%s: post_processor token \"%s\" is not in the vocabulary", f, name);
                if (add_fixed(t, f, after, id) != 0) return -1;
            }
        }
        return 0;
    }
    if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(p, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(p, "sep");
        if (cJSON_GetArraySize(cls) != 2 || cJSON_GetArraySize(sep) != 2) return t2_fail("%s: %s without cls/sep", f, ty);
        if (add_fixed(t, f, 0, cJSON_GetArrayItem(cls, 1)->valueint) != 0) return -1;
        return add_fixed(t, f, 1, cJSON_GetArrayItem(sep, 1)->valueint);
    }
    return t2_fail("%s: post_processor \"%s\" is not supported", f, ty);
}

// The model vocabulary {piece: id} (tokenizer.json's model.vocab or vocab.json).
static int load_vocab(t2_tokenizer *t, const char *f, const cJSON *v) {
    if (!cJSON_IsObject(v)) return t2_fail("%s: the vocabulary is not a JSON object", f);
    int n = cJSON_GetArraySize(v);
    t->vt_mask = table_size((size_t)n) - 1;
    t->vt = t2_malloc(((size_t)t->vt_mask + 1) * sizeof *t->vt);
    for (uint32_t i = 0; i <= t->vt_mask; i++) t->vt[i].id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (d < 0 || d >= (1 << 24) || d != (int)d)
            return t2_fail("%s: vocabulary entry \"%.100s\" has no valid id", f, it->string);
        vocab_put(t, it->string, strlen(it->string), (int32_t)d);
    }
    return 0;
}

static int merges_alloc(t2_tokenizer *t, size_t n) {
    t->mt_mask = table_size(n) - 1;
    t->mt = t2_malloc(((size_t)t->mt_mask + 1) * sizeof *t->mt);
    for (uint32_t i = 0; i <= t->mt_mask; i++) t->mt[i].rank = -1;
    return 0;
}

// Merge number RANK: pieces A and B (lengths AN, BN) → their concatenation, all in the vocabulary.
static int add_merge(t2_tokenizer *t, const char *f, int rank, const char *a, size_t an, const char *b, size_t bn, buf_t *tmp) {
    int32_t ia = vocab_get(t, a, an), ib = vocab_get(t, b, bn);
    tmp->n = 0; buf_put(tmp, a, an); buf_put(tmp, b, bn);
    int32_t ic = vocab_get(t, tmp->p, tmp->n);
    if (ia < 0 || ib < 0 || ic < 0)
        return t2_fail("%s: merge %d \"%.*s %.*s\": token \"%.*s\" is not in the vocabulary", f, rank + 1,
                       (int)an, a, (int)bn, b, ia < 0 ? (int)an : ib < 0 ? (int)bn : (int)tmp->n,
                       ia < 0 ? a : ib < 0 ? b : tmp->p);
    merge_put(t, ia, ib, rank, ic);
    return 0;
}

// Merges as "a b" strings or ["a", "b"] pairs (both occur in tokenizer.json files).
static int load_merges_json(t2_tokenizer *t, const char *f, const cJSON *m) {
    if (!cJSON_IsArray(m)) return t2_fail("%s: model.merges is not a list", f);
    merges_alloc(t, (size_t)cJSON_GetArraySize(m));
    buf_t tmp = {0};
    int rank = 0, rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, m) {
        const char *a = NULL, *b = NULL;
        size_t an = 0, bn = 0;
        if (cJSON_IsString(it)) {
            const char *sp = strchr(it->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) { a = it->valuestring; an = (size_t)(sp - a); b = sp + 1; bn = strlen(b); }
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring; an = strlen(a);
            b = it->child->next->valuestring; bn = strlen(b);
        }
        if (!a) { rc = t2_fail("%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", f, rank + 1); break; }
        if ((rc = add_merge(t, f, rank, a, an, b, bn, &tmp)) != 0) break;
        rank++;
    }
    free(tmp.p);
    return rc;
}

// A JSON token field: "text" or {"content": "text"}; NULL if neither.
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    return t2_json_str(v, "content", NULL);
}

static int load_tokenizer_json(t2_tokenizer *t, const char *f) {
    cJSON *j = t2_json_load(f);
    if (!j) return -1;
    int rc = -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model"), *it;
    const char *ty = t2_json_str(model, "type", NULL);
    if (!cJSON_IsObject(model)) { t2_fail("%s: no \"model\" object", f); goto done; }
    if (ty ? strcmp(ty, "BPE") != 0 : !cJSON_GetObjectItemCaseSensitive(model, "merges")) {
        t2_fail("%s: model.type \"%s\" is not supported (only BPE)", f, ty ? ty : "(none)");
        goto done;
    }
    const char *pfx = t2_json_str(model, "continuing_subword_prefix", ""), *sfx = t2_json_str(model, "end_of_word_suffix", "");
    if (*pfx || *sfx) { t2_fail("%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", f); goto done; }
    t->ignore_merges = t2_json_bool(model, "ignore_merges", 0);
    t->byte_fallback = t2_json_bool(model, "byte_fallback", 0);
    t->fuse_unk = t2_json_bool(model, "fuse_unk", 0);
    if (load_vocab(t, f, cJSON_GetObjectItemCaseSensitive(model, "vocab")) != 0) goto done;
    if (load_merges_json(t, f, cJSON_GetObjectItemCaseSensitive(model, "merges")) != 0) goto done;
    const char *unk = t2_json_str(model, "unk_token", NULL);
    t->unk_id = unk ? vocab_get(t, unk, strlen(unk)) : -1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "added_tokens")) {
        const char *c = t2_json_str(it, "content", NULL);
        double id = t2_json_num(it, "id", -1);
        if (!c || !*c || id < 0 || id >= (1 << 24)) { t2_fail("%s: added_tokens entry without content and id", f); goto done; }
        added_add(t, c, (int)id, t2_json_bool(it, "special", 0), t2_json_bool(it, "lstrip", 0), t2_json_bool(it, "rstrip", 0));
    }
    if (load_normalizer(t, f, cJSON_GetObjectItemCaseSensitive(j, "normalizer")) != 0) goto done;
    if (load_pretok(t, f, cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer")) != 0) goto done;
    if (load_decoder(t, f, cJSON_GetObjectItemCaseSensitive(j, "decoder")) != 0) goto done;
    if (load_postproc(t, f, cJSON_GetObjectItemCaseSensitive(j, "post_processor")) != 0) goto done;
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}

// GPT-2 / Qwen2 slow-tokenizer layout: vocab.json + merges.txt, added tokens from
// tokenizer_config.json's added_tokens_decoder, byte-level with the GPT-2 or Qwen2 regex.
static int load_vocab_merges(t2_tokenizer *t, const char *dir, const cJSON *tc) {
    char path[4096];
    if (t2_path_join(path, sizeof path, dir, "vocab.json") != 0) return -1;
    cJSON *v = t2_json_load(path);
    if (!v) return -1;
    int rc = load_vocab(t, path, v);
    cJSON_Delete(v);
    if (rc != 0) return -1;
    if (t2_path_join(path, sizeof path, dir, "merges.txt") != 0) return -1;
    size_t n;
    char *text = t2_read_file(path, &n);
    if (!text) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    merges_alloc(t, lines);
    buf_t tmp = {0};
    int rank = 0, line = 0;
    for (char *p = text; p < text + n && rc == 0;) {
        char *e = memchr(p, '\n', (size_t)(text + n - p));
        if (!e) e = text + n;
        size_t len = (size_t)(e - p);
        line++;
        if (len && p[len - 1] == '\r') len--;
        if (len && !(len >= 8 && !memcmp(p, "#version", 8))) {
            char *sp = memchr(p, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - p)))
                rc = t2_fail("%s: line %d is not \"a b\"", path, line);
            else
                rc = add_merge(t, path, rank++, p, (size_t)(sp - p), sp + 1, len - (size_t)(sp + 1 - p), &tmp);
        }
        p = e + 1;
    }
    free(tmp.p);
    free(text);
    if (rc != 0) return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder")) {
        const char *c = t2_json_str(it, "content", NULL);
        char *end;
        long id = strtol(it->string, &end, 10);
        if (!c || !*c || *end || id < 0 || id >= (1 << 24))
            return t2_fail("%s/tokenizer_config.json: bad added_tokens_decoder entry \"%s\"", dir, it->string);
        added_add(t, c, (int)id, t2_json_bool(it, "special", 0), t2_json_bool(it, "lstrip", 0), t2_json_bool(it, "rstrip", 0));
    }
    const char *cls = t2_json_str(tc, "tokenizer_class", "");
    int qwen = strstr(cls, "Qwen2") != NULL;
    if (qwen) t->norm[t->n_norm++] = (norm_step){NORM_NFC, NULL, NULL, NULL};
    pcre2_code *re = compile_re(path, "pre-tokenizer", qwen ? RE_QWEN2 : RE_GPT2, 0);
    if (!re) return -1;
    t->byte_level = 1;
    t->dec_bytelevel = 1;
    t->unk_id = -1;
    return add_pt(t, path, (pt_step){PT_SPLIT, SPLIT_ISOLATED, 0, NULL, NULL, re});
}

// Per-id tables, byte maps and the added-token index, once vocabulary and added tokens are known.
static int cmp_added(const void *a, const void *b, void *ctx) {
    const t2_tokenizer *t = ctx;
    const added_tok *x = &t->added[*(const int *)a], *y = &t->added[*(const int *)b];
    int cx = (unsigned char)t->pool[x->off], cy = (unsigned char)t->pool[y->off];
    if (cx != cy) return cx - cy;
    return x->len != y->len ? (x->len > y->len ? -1 : 1) : x->id - y->id;
}

static void finish_tables(t2_tokenizer *t) {
    int n = 0;
    for (uint32_t i = 0; i <= t->vt_mask; i++) if (t->vt[i].id >= n) n = t->vt[i].id + 1;
    for (int i = 0; i < t->n_added; i++) if (t->added[i].id >= n) n = t->added[i].id + 1;
    t->n_ids = n;
    t->piece_off = t2_calloc((size_t)n, sizeof(uint32_t));
    t->piece_len = t2_malloc((size_t)n * sizeof(uint32_t));
    t->flags = t2_calloc((size_t)n, 1);
    t->byteval = t2_malloc((size_t)n * sizeof(int16_t));
    for (int i = 0; i < n; i++) { t->piece_len[i] = NO_PIECE; t->byteval[i] = -1; }
    for (uint32_t i = 0; i <= t->vt_mask; i++)
        if (t->vt[i].id >= 0) { t->piece_off[t->vt[i].id] = t->vt[i].off; t->piece_len[t->vt[i].id] = t->vt[i].len; }
    for (int i = 0; i < t->n_added; i++) {
        const added_tok *a = &t->added[i];
        t->piece_off[a->id] = a->off; t->piece_len[a->id] = a->len;
        t->flags[a->id] |= FLAG_ADDED | (a->special ? FLAG_SPECIAL : 0);
    }
    for (int i = 0; i < n; i++) {     // "<0xXX>" pieces, which the ByteFallback decoder turns into bytes
        const char *p = t->pool + t->piece_off[i];
        unsigned v;
        if (t->piece_len[i] == 6 && !memcmp(p, "<0x", 3) && p[5] == '>' && sscanf(p + 3, "%2x", &v) == 1)
            t->byteval[i] = (int16_t)v;
    }
    // GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100...
    int extra = 0;
    for (int i = 0; i < 512; i++) t->u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
        t->u2b[t->b2u[b]] = (int16_t)b;
        char s[8];
        int k = utf8_put(t->b2u[b], s);
        t->byte_id[b] = vocab_get(t, s, (size_t)k);
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->fallback_id[b] = vocab_get(t, s, 6);
    }
    t->added_order = t2_malloc((size_t)(t->n_added ? t->n_added : 1) * sizeof(int));
    for (int i = 0; i < t->n_added; i++) t->added_order[i] = i;
    qsort_r(t->added_order, (size_t)t->n_added, sizeof(int), cmp_added, t);
    for (int c = 0, k = 0; c <= 256; c++) {
        while (k < t->n_added && (unsigned char)t->pool[t->added[t->added_order[k]].off] < c) k++;
        t->added_bucket[c] = k;
    }
}

static void add_eos(t2_tokenizer *t, int id) {
    if (id < 0 || id >= t->n_ids) return;
    for (int i = 0; i < t->n_eos; i++) if (t->eos[i] == id) return;
    int32_t *e = t2_malloc((size_t)(t->n_eos + 1) * sizeof *e);
    if (t->n_eos) memcpy(e, t->eos, (size_t)t->n_eos * sizeof *e);
    free(t->eos);
    t->eos = e;
    t->eos[t->n_eos++] = id;
}

static void add_eos_json(t2_tokenizer *t, const cJSON *v) {   // int or list of ints
    const cJSON *x;
    if (cJSON_IsNumber(v)) add_eos(t, v->valueint);
    else cJSON_ArrayForEach(x, v) if (cJSON_IsNumber(x)) add_eos(t, x->valueint);
}

// Optional JSON file NAME in DIR: *out = NULL when absent; -1 when present but unreadable.
static int load_optional(const char *dir, const char *name, cJSON **out) {
    char path[4096];
    *out = NULL;
    if (t2_path_join(path, sizeof path, dir, name) != 0) return -1;
    if (!t2_file_exists(path)) return 0;
    return (*out = t2_json_load(path)) ? 0 : -1;
}

// BOS/EOS ids and texts, add_bos_token fallback, chat_template.
static int load_specials(t2_tokenizer *t, const char *dir, const cJSON *tc) {
    cJSON *gc, *cc;
    if (load_optional(dir, "generation_config.json", &gc) != 0) return -1;
    if (load_optional(dir, "config.json", &cc) != 0) { cJSON_Delete(gc); return -1; }
    const cJSON *text_cfg = cJSON_GetObjectItemCaseSensitive(cc, "text_config");
    const char *bt = token_text(cJSON_GetObjectItemCaseSensitive(tc, "bos_token"));
    const char *et = token_text(cJSON_GetObjectItemCaseSensitive(tc, "eos_token"));
    t->bos = bt ? t2_tok_id(t, bt) : -1;
    if (t->bos < 0 && t->n_pre == 1) t->bos = t->pre_ids[0];
    if (t->bos < 0 && !cJSON_GetObjectItemCaseSensitive(tc, "bos_token"))   // an explicit null means none
        t->bos = (int)t2_json_num(gc, "bos_token_id", t2_json_num(cc, "bos_token_id", t2_json_num(text_cfg, "bos_token_id", -1)));
    if (t->bos >= t->n_ids) t->bos = -1;
    if (et) add_eos(t, t2_tok_id(t, et));
    add_eos_json(t, cJSON_GetObjectItemCaseSensitive(gc, "eos_token_id"));
    add_eos_json(t, cJSON_GetObjectItemCaseSensitive(cc, "eos_token_id"));
    add_eos_json(t, cJSON_GetObjectItemCaseSensitive(text_cfg, "eos_token_id"));
    cJSON_Delete(gc);
    cJSON_Delete(cc);
    t->bos_text = t2_strdup(t->bos >= 0 ? t2_tok_piece(t, t->bos) : "");
    t->eos_text = t2_strdup(t->n_eos ? t2_tok_piece(t, t->eos[0]) : "");
    if (t->n_pre + t->n_post == 0) {   // no post-processor tokens: tokenizer_config's flags decide
        if (t2_json_bool(tc, "add_bos_token", 0) && t->bos >= 0) t->pre_ids[t->n_pre++] = t->bos;
        if (t2_json_bool(tc, "add_eos_token", 0) && t->n_eos) t->post_ids[t->n_post++] = t->eos[0];
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tc, "chat_template"), *it;
    if (cJSON_IsString(ct)) t->chat_template = t2_strdup(ct->valuestring);
    else cJSON_ArrayForEach(it, ct)
        if (!strcmp(t2_json_str(it, "name", ""), "default") && t2_json_str(it, "template", NULL))
            t->chat_template = t2_strdup(t2_json_str(it, "template", NULL));
    if (!t->chat_template) {   // newer checkpoints keep it beside: chat_template.jinja / .json
        char path[4096];
        if (t2_path_join(path, sizeof path, dir, "chat_template.jinja") != 0) return -1;
        if (t2_file_exists(path)) return (t->chat_template = t2_read_file(path, NULL)) ? 0 : -1;
        cJSON *cj;
        if (load_optional(dir, "chat_template.json", &cj) != 0) return -1;
        const char *s = t2_json_str(cj, "chat_template", NULL);
        if (s) t->chat_template = t2_strdup(s);
        cJSON_Delete(cj);
    }
    return 0;
}

// Contract (tokenizer.h).
t2_tokenizer *t2_tok_load(const char *dir) {
    char path[4096];
    t2_tokenizer *t = t2_calloc(1, sizeof *t);
    t->unk_id = t->bos = -1;
    cJSON *tc = NULL;
    int rc = load_optional(dir, "tokenizer_config.json", &tc);
    if (rc == 0 && (rc = t2_path_join(path, sizeof path, dir, "tokenizer.json")) == 0) {
        if (t2_file_exists(path)) rc = load_tokenizer_json(t, path);
        else {
            char vpath[4096];
            if ((rc = t2_path_join(vpath, sizeof vpath, dir, "vocab.json")) == 0) {
                if (t2_file_exists(vpath)) rc = load_vocab_merges(t, dir, tc);
                else rc = t2_fail("%s: no tokenizer.json, and no vocab.json + merges.txt", dir);
            }
        }
    }
    if (rc == 0) {
        finish_tables(t);
        rc = load_specials(t, dir, tc);
    }
    cJSON_Delete(tc);
    if (rc != 0) { t2_tok_free(t); return NULL; }
    return t;
}

void t2_tok_free(t2_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_norm; i++) { free(t->norm[i].a); free(t->norm[i].b); if (t->norm[i].re) pcre2_code_free(t->norm[i].re); }
    for (int i = 0; i < t->n_pt; i++) { free(t->pt[i].a); free(t->pt[i].b); if (t->pt[i].re) pcre2_code_free(t->pt[i].re); }
    free(t->pool); free(t->vt); free(t->mt); free(t->added); free(t->added_order);
    free(t->piece_off); free(t->piece_len); free(t->flags); free(t->byteval);
    free(t->dec_from); free(t->dec_to); free(t->dec_ms);
    free(t->eos); free(t->bos_text); free(t->eos_text); free(t->chat_template);
    free(t);
}

// ---------------------------------------------------------------------------------------------
// Encoding

typedef struct { int32_t id, prev, next; } sym_t;    // a BPE symbol in a doubly linked list
typedef struct { int32_t rank, pos; } hent_t;        // a candidate merge of symbol POS with its next

typedef struct {
    const t2_tokenizer *t;
    int32_t *out; int cap, n;                         // ids written / counted
    void (*fn)(void *ctx, const char *piece, size_t len); void *ctx;   // pretokenize sink (else BPE)
    pcre2_match_data *md;
    buf_t nb[2], sb[MAX_STEPS], word;                 // normaliser, pre-tokenizer and word scratch
    sym_t *sym; hent_t *heap; size_t sym_cap;
} enc_t;

static void enc_free(enc_t *e) {
    free(e->nb[0].p); free(e->nb[1].p); free(e->word.p);
    for (int i = 0; i < MAX_STEPS; i++) free(e->sb[i].p);
    free(e->sym); free(e->heap);
    if (e->md) pcre2_match_data_free(e->md);
}

static void emit(enc_t *e, int32_t id) { if (e->n < e->cap) e->out[e->n] = id; e->n++; }

// Next match of RE in S[0..N) at or after FROM: 1 found, 0 none, -1 error.
static int re_find(enc_t *e, const pcre2_code *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, e->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, e->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return t2_fail("tokenizer: regex match failed: %s", (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    *ms = ov[0]; *me = ov[1];
    return 1;
}

// Replace every FROM in S[0..N) by TO, appending to B.
static void replace_all(buf_t *b, const char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), i = 0, last = 0;
    while (i < n) {
        if (fl && i + fl <= n && !memcmp(s + i, from, fl)) { buf_put(b, s + last, i - last); buf_put(b, to, tl); i += fl; last = i; }
        else i++;
    }
    buf_put(b, s + last, n - last);
}

// The normalizer steps on one segment; returns the result (in e's scratch or S itself).
static const char *normalize(enc_t *e, const char *s, size_t n, size_t *out_n) {
    const t2_tokenizer *t = e->t;
    for (int k = 0; k < t->n_norm; k++) {
        const norm_step *st = &t->norm[k];
        buf_t *b = &e->nb[k & 1];
        b->n = 0;
        buf_need(b, 0);
        b->p[0] = 0;
        switch (st->kind) {
        case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD: {
            int fl = UTF8PROC_STABLE | (st->kind == NORM_NFC || st->kind == NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE)
                   | (st->kind >= NORM_NFKC ? UTF8PROC_COMPAT : 0);
            utf8proc_uint8_t *r = NULL;
            utf8proc_ssize_t m = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r, (utf8proc_option_t)fl) : 0;
            if (m < 0) { free(r); return NULL; }
            buf_put(b, (const char *)r, (size_t)m);
            free(r);
            break;
        }
        case NORM_PREPEND: if (n) buf_put(b, st->a, strlen(st->a)); buf_put(b, s, n); break;
        case NORM_REPLACE: replace_all(b, s, n, st->a, st->b); break;
        case NORM_REPLACE_RE: {
            size_t pos = 0, last = 0, ms, me;
            int r;
            while (pos <= n && (r = re_find(e, st->re, s, n, pos, &ms, &me)) != 0) {
                if (r < 0) return NULL;
                if (me == ms) { pos = me + (me < n ? (size_t)utf8_len((unsigned char)s[me]) : 1); continue; }
                buf_put(b, s + last, ms - last);
                buf_put(b, st->b, strlen(st->b));
                last = pos = me;
            }
            buf_put(b, s + last, n - last);
            break;
        }
        case NORM_LOWER:
            for (size_t i = 0; i < n;) {
                int l;
                uint32_t c = utf8_get(s + i, &l);
                char o[4];
                buf_put(b, o, (size_t)utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), o));
                i += (size_t)l;
            }
            break;
        }
        s = b->p; n = b->n;
    }
    *out_n = n;
    return s;
}

// BPE over one pre-token: initial symbols, then repeatedly merge the adjacent pair of lowest rank
// (leftmost on ties) with a binary heap of candidates and lazy invalidation, as HF's Word does.
static int heap_less(hent_t a, hent_t b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(hent_t *h, size_t *n, hent_t x) {
    size_t i = (*n)++;
    while (i && heap_less(x, h[(i - 1) / 2])) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = x;
}

static hent_t heap_pop(hent_t *h, size_t *n) {
    hent_t top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], x)) break;
        h[i] = h[c]; i = c;
    }
    h[i] = x;
    return top;
}

static void push_pair(const t2_tokenizer *t, enc_t *e, size_t *hn, int32_t pos) {
    int32_t nx = e->sym[pos].next;
    if (nx < 0) return;
    const ment *m = merge_get(t, e->sym[pos].id, e->sym[nx].id);
    if (m) heap_push(e->heap, hn, (hent_t){m->rank, pos});
}

static int bpe_piece(enc_t *e, const char *s, size_t n) {
    const t2_tokenizer *t = e->t;
    const char *w = s;
    size_t wn = n;
    if (t->byte_level) {    // the word as the vocabulary spells it: every byte → one mapped character
        e->word.n = 0;
        buf_need(&e->word, 2 * n);
        for (size_t i = 0; i < n; i++) e->word.n += (size_t)utf8_put(t->b2u[(unsigned char)s[i]], e->word.p + e->word.n);
        w = e->word.p; wn = e->word.n;
    }
    if (t->ignore_merges) {
        int32_t id = vocab_get(t, w, wn);
        if (id >= 0) { emit(e, id); return 0; }
    }
    if (n > e->sym_cap) {
        free(e->sym); free(e->heap);
        e->sym_cap = n + 64;
        e->sym = t2_malloc(e->sym_cap * sizeof *e->sym);
        e->heap = t2_malloc(3 * e->sym_cap * sizeof *e->heap);
    }
    int32_t ns = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < n;) {
        int l = 1;
        int32_t id;
        if (t->byte_level) id = t->byte_id[(unsigned char)s[i]];
        else { utf8_get(s + i, &l); id = vocab_get(t, s + i, (size_t)l); }
        if (id < 0 && t->byte_fallback) {
            int ok = 1;
            for (int k = 0; k < l; k++) ok &= t->fallback_id[(unsigned char)s[i + (size_t)k]] >= 0;
            if (ok) {
                for (int k = 0; k < l; k++) e->sym[ns++].id = t->fallback_id[(unsigned char)s[i + (size_t)k]];
                i += (size_t)l; prev_unk = 0;
                continue;
            }
        }
        if (id < 0) {   // unknown: <unk> (consecutive ones fused if fuse_unk), or dropped without one
            if (t->unk_id >= 0 && !(t->fuse_unk && prev_unk)) e->sym[ns++].id = t->unk_id;
            prev_unk = t->unk_id >= 0;
        } else { e->sym[ns++].id = id; prev_unk = 0; }
        i += (size_t)l;
    }
    for (int32_t i = 0; i < ns; i++) { e->sym[i].prev = i - 1; e->sym[i].next = i + 1 < ns ? i + 1 : -1; }
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < ns; i++) push_pair(t, e, &hn, i);
    while (hn) {
        hent_t h = heap_pop(e->heap, &hn);
        sym_t *a = &e->sym[h.pos];
        if (a->id < 0 || a->next < 0) continue;
        const ment *m = merge_get(t, a->id, e->sym[a->next].id);
        if (!m || m->rank != h.rank) continue;   // stale: this pair changed since it was queued
        sym_t *b = &e->sym[a->next];
        a->id = m->id;
        b->id = -1;
        a->next = b->next;
        if (a->next >= 0) e->sym[a->next].prev = h.pos;
        if (a->prev >= 0) push_pair(t, e, &hn, a->prev);
        push_pair(t, e, &hn, h.pos);
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = e->sym[i].next) emit(e, e->sym[i].id);
    return 0;
}

static int sink(enc_t *e, const char *s, size_t n) {
    if (e->fn) { e->fn(e->ctx, s, n); return 0; }
    return bpe_piece(e, s, n);
}

// Pre-tokenizer step K on piece S[0..N); FIRST: the piece starts the original text.
static int run_steps(enc_t *e, int k, const char *s, size_t n, int first) {
    const t2_tokenizer *t = e->t;
    if (n == 0) return 0;
    if (k == t->n_pt) return sink(e, s, n);
    const pt_step *st = &t->pt[k];
    buf_t *b = &e->sb[k];
    if (st->kind == PT_PREFIX) {
        size_t al = strlen(st->a);
        if ((st->first_only && !first) || (n >= al && !memcmp(s, st->a, al))) return run_steps(e, k + 1, s, n, first);
        b->n = 0; buf_put(b, st->a, al); buf_put(b, s, n);
        return run_steps(e, k + 1, b->p, b->n, first);
    }
    if (st->kind == PT_REPLACE) {
        b->n = 0; buf_need(b, n);
        replace_all(b, s, n, st->a, st->b);
        return run_steps(e, k + 1, b->p, b->n, first);
    }
    size_t pos = 0, last = 0, ms, me;
    int r;
    while (pos <= n && (r = re_find(e, st->re, s, n, pos, &ms, &me)) != 0) {
        if (r < 0) return -1;
        if (me == ms) { pos = me + (me < n ? (size_t)utf8_len((unsigned char)s[me]) : 1); continue; }
        size_t cut = st->behavior == SPLIT_MERGED_PREV ? me : ms;   // the piece before the match ends here
        if (cut > last && run_steps(e, k + 1, s + last, cut - last, first && last == 0) != 0) return -1;
        if (st->behavior == SPLIT_ISOLATED && run_steps(e, k + 1, s + ms, me - ms, first && ms == 0) != 0) return -1;
        last = st->behavior == SPLIT_MERGED_NEXT ? ms : me;
        if (cut > last) last = cut;
        pos = me;
    }
    return run_steps(e, k + 1, s + last, n - last, first && last == 0);
}

static int enc_segment(enc_t *e, const char *s, size_t n, int first) {
    size_t m;
    const char *x = normalize(e, s, n, &m);
    if (!x) return t2_fail("tokenizer: normalisation failed");
    return run_steps(e, 0, x, m, first);
}

static int enc_init(enc_t *e, const t2_tokenizer *t, const char *text) {
    memset(e, 0, sizeof *e);
    e->t = t;
    size_t bad = t2_utf8_check(text, strlen(text));
    if (text[bad]) return t2_fail("tokenizer: text is not valid UTF-8 at byte %zu", bad);
    e->md = pcre2_match_data_create(1, NULL);
    return 0;
}

// Longest added token at S[0..N) (specials only when PARSE_SPECIAL), or NULL.
static const added_tok *match_added(const t2_tokenizer *t, const char *s, size_t n, int parse_special) {
    int c = (unsigned char)s[0];
    for (int k = t->added_bucket[c]; k < t->added_bucket[c + 1]; k++) {
        const added_tok *a = &t->added[t->added_order[k]];
        if ((!a->special || parse_special) && a->len <= n && !memcmp(t->pool + a->off, s, a->len)) return a;
    }
    return NULL;
}

// Contract (tokenizer.h).
int t2_tok_encode(const t2_tokenizer *t, const char *text, int add_special, int parse_special, int32_t *out, int cap) {
    T2_ASSERT(t && text && (out || cap <= 0));
    enc_t e;
    if (enc_init(&e, t, text) != 0) return -1;
    e.out = out; e.cap = cap < 0 ? 0 : cap;
    if (add_special) for (int i = 0; i < t->n_pre; i++) emit(&e, t->pre_ids[i]);
    size_t n = strlen(text), seg = 0, pos = 0;
    int rc = 0;
    while (pos < n && rc == 0) {
        const added_tok *a = match_added(t, text + pos, n - pos, parse_special);
        if (!a) { pos++; continue; }
        size_t start = pos, stop = pos + a->len;
        if (a->lstrip)      // absorb the whitespace before it (not past the previous token)
            while (start > seg) {
                size_t p = start - 1;
                while (p > seg && ((unsigned char)text[p] & 0xC0) == 0x80) p--;
                int l;
                if (!is_ws(utf8_get(text + p, &l))) break;
                start = p;
            }
        if (a->rstrip)
            while (stop < n) {
                int l;
                if (!is_ws(utf8_get(text + stop, &l))) break;
                stop += (size_t)l;
            }
        if (start > seg) rc = enc_segment(&e, text + seg, start - seg, seg == 0);
        emit(&e, a->id);
        seg = pos = stop;
    }
    if (rc == 0 && n > seg) rc = enc_segment(&e, text + seg, n - seg, seg == 0);
    if (add_special) for (int i = 0; i < t->n_post; i++) emit(&e, t->post_ids[i]);
    enc_free(&e);
    return rc != 0 ? -1 : e.n;
}

// Contract (tokenizer.h).
int t2_tok_pretokenize(const t2_tokenizer *t, const char *text, void (*fn)(void *ctx, const char *piece, size_t len), void *ctx) {
    enc_t e;
    if (enc_init(&e, t, text) != 0) return -1;
    e.fn = fn; e.ctx = ctx;
    int rc = enc_segment(&e, text, strlen(text), 1);
    enc_free(&e);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Decoding

typedef struct { char *out; size_t cap, n; int strip; } dec_t;

static void dec_put(dec_t *d, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (d->strip > 0) {    // Strip decoder: leading spaces of the whole text
            if (s[i] == ' ') { d->strip--; continue; }
            d->strip = 0;
        }
        if (d->n + 1 < d->cap) d->out[d->n] = s[i];
        d->n++;
    }
}

// Piece P[0..N) with every FROM replaced by TO.
static void dec_replace(dec_t *d, const char *p, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), i = 0, last = 0;
    while (i < n) {
        if (i + fl <= n && !memcmp(p + i, from, fl)) { dec_put(d, p + last, i - last); dec_put(d, to, tl); i += fl; last = i; }
        else i++;
    }
    dec_put(d, p + last, n - last);
}

// Contract (tokenizer.h). Bytes are passed through as they are (no U+FFFD substitution), so a
// caller streaming token by token can hold back an incomplete character.
int t2_tok_decode(const t2_tokenizer *t, const int32_t *ids, int n, int skip_special, char *out, size_t cap) {
    T2_ASSERT(t && (ids || n <= 0) && (out || cap == 0));
    dec_t d = {out, cap, 0, t->dec_strip};
    int first = 1;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_ids || t->piece_len[id] == NO_PIECE) {
            if (cap) out[0] = 0;
            return t2_fail("tokenizer: cannot decode id %d (vocabulary of %d)", id, t->n_ids);
        }
        if (skip_special && (t->flags[id] & FLAG_SPECIAL)) continue;
        const char *p = t->pool + t->piece_off[id];
        size_t len = t->piece_len[id];
        if (t->dec_bytefallback && t->byteval[id] >= 0) {
            char c = (char)t->byteval[id];
            dec_put(&d, &c, 1);
        } else if (t->dec_bytelevel) {   // every character back to its byte, or the piece verbatim
            int ok = 1, l;
            for (size_t j = 0; j < len && ok; j += (size_t)l) {
                uint32_t c = utf8_get(p + j, &l);
                ok = c < 512 && t->u2b[c] >= 0;
            }
            if (!ok) dec_put(&d, p, len);
            else for (size_t j = 0; j < len; j += (size_t)l) {
                char c = (char)t->u2b[utf8_get(p + j, &l)];
                dec_put(&d, &c, 1);
            }
        } else if (t->dec_from) dec_replace(&d, p, len, t->dec_from, t->dec_to);
        else if (t->dec_metaspace) dec_replace(&d, p, len, t->dec_ms, first && t->dec_ms_first ? "" : " ");
        else dec_put(&d, p, len);
        first = 0;
    }
    if (cap) out[d.n < cap ? d.n : cap - 1] = 0;
    return (int)d.n;
}

// ---------------------------------------------------------------------------------------------
// Accessors

int t2_tok_vocab_size(const t2_tokenizer *t) { return t->n_ids; }
int t2_tok_bos(const t2_tokenizer *t) { return t->bos; }
int t2_tok_eos(const t2_tokenizer *t) { return t->n_eos ? t->eos[0] : -1; }
int t2_tok_is_eos(const t2_tokenizer *t, int id) {
    for (int i = 0; i < t->n_eos; i++) if (t->eos[i] == id) return 1;
    return 0;
}
int t2_tok_is_special(const t2_tokenizer *t, int id) { return id >= 0 && id < t->n_ids && (t->flags[id] & FLAG_SPECIAL); }
const char *t2_tok_piece(const t2_tokenizer *t, int id) {
    return id >= 0 && id < t->n_ids && t->piece_len[id] != NO_PIECE ? t->pool + t->piece_off[id] : NULL;
}
const char *t2_tok_chat_template(const t2_tokenizer *t) { return t->chat_template; }
const char *t2_tok_bos_text(const t2_tokenizer *t) { return t->bos_text ? t->bos_text : ""; }
const char *t2_tok_eos_text(const t2_tokenizer *t) { return t->eos_text ? t->eos_text : ""; }
