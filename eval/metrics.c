// metrics.c — the scores benchmarks are judged by, each a copy of the semantics of the tool the
// field trusts, not an approximation of it:
//   VQA accuracy   GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py (master):
//                  its tables (contractions, manualMap, articles, punct) copied verbatim, its
//                  regexes translated by hand, evaluate()'s asymmetric treatment of the two sides.
//   ANLS           DocVQA / RRC: 1 − normalised Levenshtein (code points) on " ".join(s.strip()
//                  .lower().split()), the best over answers, 0 when below the threshold.
//   GSM8K          lm-evaluation-harness "flexible-extract": the last match of
//                  (-?[$0-9.,]{2,})|(-?[0-9]+), then its exact_match ignores "," "$" and one "\.$".
//   multiple choice  our own documented rules (t2_mc_extract below).
// Python's str semantics are followed at the code-point level: whitespace = str.isspace(), \d = any
// Unicode Nd digit, lower() = utf8proc's simple lowercase plus U+0130 → "i̇" (full mapping).
// Known deviations (documented, not hit by benchmark data): Greek final sigma is lowercased to σ
// (Python: ς at word end), and bytes that are not valid UTF-8 pass through unchanged.
// Not here: reading benchmarks, per-type aggregation, reports (eval.c / bench.h); I/O of any kind.
#include "eval/metrics.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

// ---- Python str semantics over UTF-8 ------------------------------------------------------------

// The code point at S[I] (N bytes in all) into *CP, returning its byte length; an invalid
// sequence is one byte with *CP = -1.
static int utf8_next(const char *s, size_t n, size_t i, int32_t *cp) {
    const unsigned char *u = (const unsigned char *)s + i;
    size_t left = n - i;
    int len = u[0] < 0x80 ? 1 : (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3
            : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 1) { *cp = u[0]; return 1; }
    if (len == 0 || (size_t)len > left) { *cp = -1; return 1; }
    int32_t c = u[0] & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((u[k] & 0xC0) != 0x80) { *cp = -1; return 1; }
        c = (c << 6) | (u[k] & 0x3F);
    }
    static const int32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) { *cp = -1; return 1; }
    *cp = c;
    return len;
}

// The code point that ends just before byte I of S (I > 0), or -1 if that is not valid UTF-8.
static int32_t utf8_prev(const char *s, size_t i) {
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    int32_t cp;
    int len = utf8_next(s, i, j, &cp);
    return j + (size_t)len == i ? cp : -1;
}

// str.isspace().
static int py_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

// re's \d on str patterns: any Unicode decimal digit (category Nd).
static int py_isdigit(int32_t c) {
    if (c < 0) return 0;
    if (c < 0x80) return c >= '0' && c <= '9';
    return utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}

// An append-only output of CAP bytes (NUL included) that drops whatever does not fit, never
// splitting the pieces it is handed.
typedef struct { char *out; size_t cap, len; int full; } sink;

static void sink_put(sink *k, const char *p, size_t n) {
    if (k->full || k->cap == 0) return;
    if (k->len + n + 1 > k->cap) { k->full = 1; return; }
    memcpy(k->out + k->len, p, n);
    k->len += n;
    k->out[k->len] = 0;
}

// Append str.lower() of the N bytes at S.
static void put_lower(sink *k, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t c;
        int len = utf8_next(s, n, i, &c);
        if (c < 0) { sink_put(k, s + i, 1); }
        else if (c < 0x80) { char b = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c); sink_put(k, &b, 1); }
        else if (c == 0x130) { sink_put(k, "i\xCC\x87", 3); }   // full mapping: i + combining dot
        else {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(c), enc);
            sink_put(k, (const char *)enc, (size_t)m);
        }
        i += (size_t)len;
    }
}

// A malloc'd copy of S as " ".join(S.strip().lower().split()) when COLLAPSE, else S.strip().lower();
// NULL when out of memory.
static char *lower_dup(const char *s, int collapse) {
    size_t n = strlen(s), cap = 3 * n + 4;   // lowercase grows at most 3/2 per code point
    char *out = malloc(cap);
    if (!out) return NULL;
    sink k = {out, cap, 0, 0};
    out[0] = 0;
    size_t i = 0, word = 0, last_end = 0;
    int in_word = 0, words = 0;
    while (i <= n) {
        int32_t c = -1;
        int len = i < n ? utf8_next(s, n, i, &c) : 1;
        int space = i == n || py_isspace(c);
        if (!in_word && !space) { in_word = 1; word = i; }
        if (in_word && space) {
            if (collapse) {
                if (words++) sink_put(&k, " ", 1);
                put_lower(&k, s + word, i - word);
            }
            in_word = 0;
            last_end = i;
        }
        i += (size_t)len;
    }
    if (!collapse) {
        size_t b = 0;
        while (b < last_end) {
            int32_t c;
            int len = utf8_next(s, n, b, &c);
            if (!py_isspace(c)) break;
            b += (size_t)len;
        }
        if (b < last_end) put_lower(&k, s + b, last_end - b);
    }
    return out;
}

// ---- vqaEval.py: the tables, verbatim ---------------------------------------------------------

static const char *const vqa_contractions[][2] = {
    {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
    {"couldnt", "couldn't"}, {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
    {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"}, {"hadnt", "hadn't"},
    {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"},
    {"havent", "haven't"}, {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"},
    {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"},
    {"itd", "it'd"}, {"itd've", "it'd've"}, {"it'dve", "it'd've"}, {"itll", "it'll"},
    {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
    {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"},
    {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"},
    {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"}, {"shant", "shan't"},
    {"shed've", "she'd've"}, {"she'dve", "she'd've"}, {"she's", "she's"},
    {"shouldve", "should've"}, {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"},
    {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
    {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"},
    {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"}, {"someoned", "someone'd"},
    {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"},
    {"somethingd've", "something'd've"}, {"something'dve", "something'd've"},
    {"somethingll", "something'll"}, {"thats", "that's"}, {"thered", "there'd"},
    {"thered've", "there'd've"}, {"there'dve", "there'd've"}, {"therere", "there're"},
    {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
    {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"},
    {"theyve", "they've"}, {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"},
    {"we'dve", "we'd've"}, {"weve", "we've"}, {"werent", "weren't"}, {"whatll", "what'll"},
    {"whatre", "what're"}, {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"},
    {"whered", "where'd"}, {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"},
    {"whod've", "who'd've"}, {"who'dve", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"},
    {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"},
    {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
    {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"},
    {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"},
    {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"}, {"youd", "you'd"},
    {"youd've", "you'd've"}, {"you'dve", "you'd've"}, {"youll", "you'll"},
    {"youre", "you're"}, {"youve", "you've"},
};
static const char *const vqa_manual_map[][2] = {
    {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"}, {"four", "4"},
    {"five", "5"}, {"six", "6"}, {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"},
};
static const char *const vqa_articles[] = {"a", "an", "the"};
static const char vqa_punct[] = ";/[]\"{}()=+\\_-><@`,?!";   // self.punct, in its order
// periodStrip = "(?!<=\d)(\.)(?!\d)": the first group is a negative *lookahead* for "<=\d" (a typo
// for a lookbehind) and never fires before a ".", so the pattern is "a . not followed by \d".
// evaluate() calls periodStrip.sub("", outText, re.UNICODE): the flag lands in the count argument,
// so at most re.UNICODE = 32 periods are removed.
#define VQA_PERIOD_SUB_COUNT 32

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

// vqaEval.processPunctuation on the N bytes of S, in place (the result is never longer). With
// PRECLEAN, first what evaluate() does to resAns: '\n' and '\t' → ' ', then str.strip(). Returns
// the new length and NUL-terminates.
static size_t vqa_punctuation(char *s, size_t n, int preclean) {
    if (preclean) {
        for (size_t i = 0; i < n; i++) if (s[i] == '\n' || s[i] == '\t') s[i] = ' ';
        size_t b = 0, e = 0;
        int seen = 0;
        for (size_t i = 0; i < n;) {
            int32_t c;
            int len = utf8_next(s, n, i, &c);
            if (!py_isspace(c)) { if (!seen) b = i; seen = 1; e = i + (size_t)len; }
            i += (size_t)len;
        }
        if (!seen) { s[0] = 0; return 0; }
        memmove(s, s + b, e - b);
        n = e - b;
        s[n] = 0;
    }
    // commaStrip = "(\d)(\,)(\d)" anywhere → every mark is deleted.
    int comma_rule = 0;
    for (size_t i = 1; i + 1 < n && !comma_rule; i++) {
        if (s[i] != ',') continue;
        int32_t next;
        utf8_next(s, n, i + 1, &next);
        comma_rule = py_isdigit(utf8_prev(s, i)) && py_isdigit(next);
    }
    // Per mark p: (p + ' ' in inText or ' ' + p in inText) or comma_rule → delete, else → ' '.
    int del[256] = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0 || !strchr(vqa_punct, ch)) continue;
        if (comma_rule || (i > 0 && s[i - 1] == ' ') || (i + 1 < n && s[i + 1] == ' ')) del[ch] = 1;
    }
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        unsigned char ch = (unsigned char)s[r];
        if (ch != 0 && strchr(vqa_punct, ch)) { if (!del[ch]) s[w++] = ' '; }
        else s[w++] = s[r];
    }
    n = w;
    // periodStrip on the result: each "." whose next code point is not \d, the first 32 of them.
    // The lookahead reads the string before substitution, which in place is still ahead of W.
    int removed = 0;
    w = 0;
    for (size_t r = 0; r < n; r++) {
        if (s[r] == '.' && removed < VQA_PERIOD_SUB_COUNT) {
            int32_t next = -1;
            if (r + 1 < n) utf8_next(s, n, r + 1, &next);
            if (!py_isdigit(next)) { removed++; continue; }
        }
        s[w++] = s[r];
    }
    s[w] = 0;
    return w;
}

static const char *vqa_lookup(const char *const (*table)[2], size_t count, const char *word) {
    for (size_t i = 0; i < count; i++)
        if (!strcmp(table[i][0], word)) return table[i][1];
    return NULL;
}

// vqaEval.processDigitArticle on the N bytes of S into K: lower(), split(), manualMap, drop
// articles, contractions, ' '.join.
static void vqa_digit_article(const char *s, size_t n, sink *k) {
    int words = 0;
    size_t i = 0;
    while (i < n) {
        int32_t c;
        int len = utf8_next(s, n, i, &c);
        if (py_isspace(c)) { i += (size_t)len; continue; }
        size_t b = i;
        while (i < n) {
            len = utf8_next(s, n, i, &c);
            if (py_isspace(c)) break;
            i += (size_t)len;
        }
        // Every table key is short ASCII: a longer word is emitted as it is, lowercased.
        char low[32];
        sink lk = {low, sizeof low, 0, 0};
        low[0] = 0;
        put_lower(&lk, s + b, i - b);
        const char *word = NULL;
        if (!lk.full) {
            const char *m = vqa_lookup(vqa_manual_map, COUNT(vqa_manual_map), low);
            word = m ? m : low;
            int article = 0;
            for (size_t a = 0; a < COUNT(vqa_articles); a++) article |= !strcmp(word, vqa_articles[a]);
            if (article) continue;
            const char *ct = vqa_lookup(vqa_contractions, COUNT(vqa_contractions), word);
            if (ct) word = ct;
        }
        if (words++) sink_put(k, " ", 1);
        if (word) sink_put(k, word, strlen(word));
        else put_lower(k, s + b, i - b);
    }
}

size_t t2_vqa_normalize(const char *in, char *out, size_t cap) {
    if (cap == 0) return 0;
    out[0] = 0;
    size_t n = strlen(in);
    char stack[512], *tmp = n < sizeof stack ? stack : malloc(n + 1);
    if (!tmp) return 0;
    memcpy(tmp, in, n + 1);
    n = vqa_punctuation(tmp, n, 1);
    sink k = {out, cap, 0, 0};
    vqa_digit_article(tmp, n, &k);
    if (tmp != stack) free(tmp);
    return k.len;
}

// Whether ANSWER, as evaluate() leaves it (processPunctuation only when PROCESS), equals RES. TMP
// holds at least strlen(ANSWER) + 1 bytes.
static int vqa_gt_matches(const char *answer, int process, const char *res, char *tmp) {
    if (!process) return !strcmp(answer, res);
    size_t n = strlen(answer);
    memcpy(tmp, answer, n + 1);
    vqa_punctuation(tmp, n, 0);
    return !strcmp(tmp, res);
}

// evaluate(): resAns is cleaned, punctuated and digit/article-processed; the human answers get
// processPunctuation only, and only when they are not all identical (the official annotation
// files are already normalised, so the asymmetry rarely shows). Leave-one-out by position.
double t2_vqa_accuracy(const char *pred, const char *const *answers, int n) {
    if (n <= 0) return 0;
    size_t np = strlen(pred), ng = 0;
    for (int i = 0; i < n; i++) { size_t l = strlen(answers[i]); if (l > ng) ng = l; }
    size_t cap = 3 * np + 16;   // lowercase ≤ 3/2 growth, a contraction adds 1 byte to a ≥ 4-byte word
    char *res = malloc(cap + ng + 1);
    if (!res) return 0;
    char *tmp = res + cap;
    t2_vqa_normalize(pred, res, cap);
    int distinct = 0;
    for (int i = 1; i < n && !distinct; i++) distinct = strcmp(answers[i], answers[0]) != 0;
    int total = 0;
    for (int i = 0; i < n; i++) total += vqa_gt_matches(answers[i], distinct, res, tmp);
    double sum = 0;   // summed in order, as Python's sum(gtAcc)
    for (int i = 0; i < n; i++) {
        int others = total - vqa_gt_matches(answers[i], distinct, res, tmp);
        double acc = others / 3.0;
        sum += acc < 1 ? acc : 1;
    }
    free(res);
    return sum / n;
}

// ---- ANLS -------------------------------------------------------------------------------------

// The code points of S into a malloc'd array (*N of them); NULL when out of memory.
static int32_t *codepoints(const char *s, size_t *n) {
    size_t len = strlen(s), m = 0;
    int32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp) return NULL;
    for (size_t i = 0; i < len;) {
        int32_t c;
        int l = utf8_next(s, len, i, &c);
        cp[m++] = c < 0 ? -(int32_t)(unsigned char)s[i] - 1 : c;   // raw bytes stay distinct
        i += (size_t)l;
    }
    *n = m;
    return cp;
}

// Levenshtein distance between A (NA) and B (NB) with unit costs; ROW holds NB + 1 entries.
static size_t levenshtein(const int32_t *a, size_t na, const int32_t *b, size_t nb, size_t *row) {
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

double t2_anls(const char *pred, const char *const *answers, int n, double tau) {
    double best = 0;
    char *p = lower_dup(pred, 1);
    size_t np = 0;
    int32_t *pc = p ? codepoints(p, &np) : NULL;
    free(p);
    if (!pc) return 0;
    for (int i = 0; i < n; i++) {
        char *g = lower_dup(answers[i], 1);
        size_t ngc = 0;
        int32_t *gc = g ? codepoints(g, &ngc) : NULL;
        free(g);
        size_t *row = gc ? malloc((np + 1) * sizeof *row) : NULL;
        if (row) {
            size_t len = ngc > np ? ngc : np;
            double nl = len == 0 ? 0.0 : (double)levenshtein(gc, ngc, pc, np, row) / (double)len;
            double score = 1.0 - nl;
            if (score > best) best = score;
        }
        free(row);
        free(gc);
    }
    free(pc);
    return best < tau ? 0 : best;
}

// ---- exact match ------------------------------------------------------------------------------

double t2_exact_match(const char *pred, const char *const *answers, int n) {
    char *p = lower_dup(pred, 0);
    if (!p) return 0;
    double hit = 0;
    for (int i = 0; i < n && !hit; i++) {
        char *g = lower_dup(answers[i], 0);
        if (g && !strcmp(g, p)) hit = 1;
        free(g);
    }
    free(p);
    return hit;
}

// ---- GSM8K ------------------------------------------------------------------------------------

static int is_num_class(char c) { return (c >= '0' && c <= '9') || c == '$' || c == '.' || c == ','; }

// lm-eval's exact_match regexes_to_ignore on the N bytes at S into OUT: delete "," and "$", then
// "\.$" (one final "."). Returns the length (0 and OUT = "" when nothing is left).
static size_t gsm8k_clean(const char *s, size_t n, char *out, size_t cap) {
    if (cap == 0) return 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ',' || s[i] == '$') continue;
        if (w + 1 < cap) out[w++] = s[i];
    }
    if (w > 0 && out[w - 1] == '.') w--;
    out[w] = 0;
    return w;
}

// findall((-?[$0-9.,]{2,})|(-?[0-9]+)) scanned left to right; the last match's [*B, *E).
// Greedy maximal runs are exactly what the backtracking regex returns here.
static int gsm8k_last_match(const char *s, size_t n, size_t *b, size_t *e) {
    int found = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t j = pos + (s[pos] == '-'), k = j;
        while (k < n && is_num_class(s[k])) k++;
        size_t end = 0;
        if (k - j >= 2) end = k;   // alternative 1
        else {                     // alternative 2
            k = j;
            while (k < n && s[k] >= '0' && s[k] <= '9') k++;
            if (k > j) end = k;
        }
        if (end) { *b = pos; *e = end; found = 1; pos = end; }
        else pos++;
    }
    return found;
}

size_t t2_last_number(const char *text, char *out, size_t cap) {
    if (cap) out[0] = 0;
    size_t b, e;
    if (!gsm8k_last_match(text, strlen(text), &b, &e)) return 0;
    return gsm8k_clean(text + b, e - b, out, cap);
}

// The harness's target is answer.split('####')[-1].strip() (the whole text when there is no "####").
size_t t2_gsm8k_gold(const char *solution, char *out, size_t cap) {
    const char *s = solution, *h;
    while ((h = strstr(s, "####"))) s = h + 4;
    char *t = lower_dup(s, 0);   // strip; digits, "$" "," "." "-" are unaffected by lower()
    if (!t) { if (cap) out[0] = 0; return 0; }
    size_t len = gsm8k_clean(t, strlen(t), out, cap);
    free(t);
    return len;
}

// A number as the harness writes it: optional "-", then digits and at most one "." ("5", "5.0",
// "-3", ".5"); parsed by hand so the C locale does not matter.
static int parse_plain_number(const char *s, double *v) {
    const char *p = s;
    int neg = *p == '-', digits = 0, dots = 0;
    if (neg) p++;
    double x = 0, scale = 1;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
            if (dots) { scale /= 10; x += (*p - '0') * scale; }
            else x = x * 10 + (*p - '0');
        } else if (*p == '.' && !dots) dots = 1;
        else return 0;
    }
    if (!digits) return 0;
    *v = neg ? -x : x;
    return 1;
}

double t2_gsm8k_score(const char *pred, const char *gold) {
    size_t np = strlen(pred) + 1, ng = strlen(gold) + 1;
    char *buf = malloc(np + ng);
    if (!buf) return 0;
    char *p = buf, *g = buf + np;
    t2_last_number(pred, p, np);
    char *gs = lower_dup(gold, 0);
    if (!gs) { free(buf); return 0; }
    gsm8k_clean(gs, strlen(gs), g, ng);
    free(gs);
    double a, b, score = 0;
    if (*p && *g) {
        if (parse_plain_number(p, &a) && parse_plain_number(g, &b)) score = a == b;
        else score = !strcmp(p, g);
    }
    free(buf);
    return score;
}

// ---- multiple choice --------------------------------------------------------------------------

static int is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// The choice index of capital letter C among N, or -1.
static int mc_letter(char c, int n) { return c >= 'A' && c < 'A' + n ? c - 'A' : -1; }

// Rules, first that applies wins:
//  1. the whole answer, trimmed of whitespace and of wrapping ( ) [ ] * and a final . : ), is one
//     letter in range, either case: "B", "b", "(B)", "B.", "**B**";
//  2. the first "answer" (any case) followed by optional " is", optional ":", spaces, optional
//     "(" "[" "*", then a capital letter in range standing alone: "The answer is B", "Answer: (C)";
//  3. the first explicit letter anywhere: "(B)", or at the start / after whitespace a capital
//     followed by "." ")" or ":" and then whitespace or the end ("B. Paris", "C) 12");
//  4. the text of a choice (case-insensitive, trimmed, non-empty) inside the answer: the one that
//     starts earliest, the longest of those on a tie;
//  else -1. Capitals only in 2–3, so "A cat" or "the answer is a dog" name no letter.
int t2_mc_extract(const char *pred, const char *const *choices, int n_choices) {
    if (n_choices <= 0) return -1;
    if (n_choices > 26) n_choices = 26;
    size_t n = strlen(pred);
    // 1.
    size_t b = 0, e = n;
    while (b < e && (is_space(pred[b]) || strchr("([*", pred[b]))) b++;
    while (e > b && (is_space(pred[e - 1]) || strchr(")]*.:", pred[e - 1]))) e--;
    if (e - b == 1) {
        char c = pred[b];
        int k = mc_letter(c >= 'a' && c <= 'z' ? (char)(c - 32) : c, n_choices);
        if (k >= 0) return k;
    }
    // 2.
    for (size_t i = 0; i + 6 <= n; i++) {
        if (strncasecmp(pred + i, "answer", 6)) continue;
        size_t j = i + 6;
        if (!strncmp(pred + j, " is", 3)) j += 3;
        if (pred[j] == ':') j++;
        while (j < n && (is_space(pred[j]) || strchr("([*", pred[j]))) j++;
        if (j < n && mc_letter(pred[j], n_choices) >= 0 && !is_alnum(pred[j + 1]))
            return mc_letter(pred[j], n_choices);
    }
    // 3.
    for (size_t i = 0; i < n; i++) {
        if (pred[i] == '(' && i + 2 < n && pred[i + 2] == ')' && mc_letter(pred[i + 1], n_choices) >= 0)
            return mc_letter(pred[i + 1], n_choices);
        if ((i == 0 || is_space(pred[i - 1])) && mc_letter(pred[i], n_choices) >= 0 &&
            i + 1 < n && strchr(".):", pred[i + 1]) && (i + 2 == n || is_space(pred[i + 2])))
            return mc_letter(pred[i], n_choices);
    }
    // 4.
    char *lp = lower_dup(pred, 0);
    if (!lp) return -1;
    int best = -1;
    size_t best_at = 0, best_len = 0;
    for (int k = 0; k < n_choices; k++) {
        if (!choices || !choices[k]) continue;
        char *lc = lower_dup(choices[k], 0);
        const char *at = lc && *lc ? strstr(lp, lc) : NULL;
        if (at) {
            size_t pos = (size_t)(at - lp), len = strlen(lc);
            if (best < 0 || pos < best_at || (pos == best_at && len > best_len)) {
                best = k; best_at = pos; best_len = len;
            }
        }
        free(lc);
    }
    free(lp);
    return best;
}
