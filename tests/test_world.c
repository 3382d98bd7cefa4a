// test_world.c — world/: determinism (an item is a pure function of family/split/index/opts, and
// neighbours differ), validity of 200 items of every family (answers' formats, MC letters, dispatch
// labels, images not blank), the textvqa vocabulary (≥100 words, numbers up to 99), the splits being
// disjoint, `t2 world gen` output loading through eval's JSONL reader, bad flags failing, and
// the facts family's answers against the fact table, the glyph records (what was drawn, where: the
// tower's pretraining labels) against the answers and the pixels, bit-identical regeneration of checked-in test-set checksums (world/benchmarks/).
#include "testutil.h"
#include "core/error.h"
#include "eval/bench.h"
#include "world/world.h"
#include "world/world_int.h"
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S 96
static uint8_t rgb_a[S * S * 3], rgb_b[S * S * 3];

static int lower_word(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-')) return 0;
    return 1;
}

static const wd_entity *entity(const char *name, size_t len) {
    for (int i = 0; i < wd_n_entities; i++)
        if (strlen(wd_entities[i].name) == len && !strncmp(wd_entities[i].name, name, len)) return &wd_entities[i];
    return NULL;
}

// A facts item's answer, re-derived from the fact table (the item's own wording parsed back): 1 right,
// 0 wrong or not parsed.
static int facts_answer_ok(const t2_world_item *it) {
    const char *q = it->question, *a = it->answer;
    char w[64], x[64];
    const wd_entity *e, *o;
    if (!strncmp(q, "Which of these is ", 18) && strchr(q, '\n')) {          // letter of a word
        const char *nl = strchr(q, '\n');
        size_t len = (size_t)(nl - (q + 18)) - 1;                              // minus the '?'
        if (a[0] < 'A' || a[0] > 'D' || a[1]) return 0;
        char line[128];
        snprintf(line, sizeof line, "\n%c. %.*s\n", a[0], (int)len, q + 18);
        char whole[1100];
        snprintf(whole, sizeof whole, "%s\n", q);
        return strstr(whole, line) != NULL;
    }
    if (!strncmp(q, "Which letter does each option have?\n", 36)) {           // every option's letter
        char opts[4][64];
        int n = 0;
        for (const char *p = strchr(q, '\n'); p && n < 5; p = strchr(p + 1, '\n'), n++)
            if (n == 4 || sscanf(p, "\n%*c. %63[a-z]", opts[n]) != 1 || p[1] != 'A' + n) return 0;
        if (n < 2) return 0;
        int seen[4] = {0}, k = 0;
        for (const char *p = a; *p; k++) {                                    // "plum (B), saw (A)"
            char word[64], L;
            int used = 0;
            if (sscanf(p, "%63[a-z] (%c)%n", word, &L, &used) != 2 || !used || L < 'A' || L >= 'A' + n) return 0;
            if (strcmp(opts[L - 'A'], word) || seen[L - 'A']++) return 0;
            p += used;
            if (*p && strncmp(p, ", ", 2)) return 0;
            if (*p) p += 2;
        }
        return k == n;
    }
    const char *colon = strchr(q, ':');
    if (colon) {                                                               // inline options: "...: a, b, c or d?"
        char opts[4][64];
        if (sscanf(colon, ": %63[a-z], %63[a-z], %63[a-z] or %63[a-z]?", opts[0], opts[1], opts[2], opts[3]) != 4) return 0;
        int found = 0;
        for (int k = 0; k < 4; k++) found += !strcmp(opts[k], a);
        if (found != 1) return 0;
        // the property: 0 fly, 1 water, 2 wheels, 3 category, 4 not category, 5 biggest, 6 smallest, 7 colour
        int which = -1;
        const char *cn = NULL;
        char col[32] = "";
        if (strstr(q, "can fly")) which = 0;
        else if (strstr(q, "lives in water")) which = 1;
        else if (strstr(q, "has wheels")) which = 2;
        else if (strstr(q, "the biggest")) which = 5;
        else if (strstr(q, "the smallest")) which = 6;
        else if (sscanf(q, "Which of these is usually %31[a-z]:", col) == 1) which = 7;
        else if (!strncmp(q, "Which of these is not ", 22)) which = 4, cn = strchr(q + 22, ' ') + 1;
        else if (!strncmp(q, "Which of these is a", 19)) which = 3, cn = strchr(q + 18, ' ') + 1;
        if (which < 0) return 0;
        const wd_entity *ans = entity(a, strlen(a));
        if (!ans) return 0;
        for (int k = 0; k < 4; k++) {
            if (!(e = entity(opts[k], strlen(opts[k])))) return 0;
            int is = !strcmp(opts[k], a), v;
            if (which == 5 || which == 6) v = is || (which == 5 ? e->size <= ans->size - 2 : e->size >= ans->size + 2);
            else if (which == 7) v = e->color && (strcmp(e->color, col) == 0) == is;
            else {
                v = which == 0 ? e->fly : which == 1 ? e->water : which == 2 ? e->wheels
                  : strncmp(cn, wd_cat_names[e->cat], strlen(wd_cat_names[e->cat])) == 0;
                if (which == 4) v = !v;
                v = v == is;
            }
            if (!v) return 0;
        }
        return 1;
    }
    int yes = !strcmp(a, "yes");
    if (!yes && strcmp(a, "no")) return 0;
    char buf[1024], *d = buf;                                                  // "an" → "a": one pattern per question
    for (const char *p = q; *p && d < buf + sizeof buf - 1; p++) {
        *d++ = *p;
        if (!strncmp(p, " an ", 4)) *d++ = 'a', p += 2;
    }
    *d = 0;
    q = buf;
    int n = 0;   // %n: the whole question matched, not just its start
#define WHOLE(...) (n = 0, sscanf(q, __VA_ARGS__, &n), n == (int)strlen(q))
    if (WHOLE("Can a %63[a-z] fly?%n", w)) return (e = entity(w, strlen(w))) && e->fly == yes;
    if (WHOLE("Does a %63[a-z] live in water?%n", w)) return (e = entity(w, strlen(w))) && e->water == yes;
    if (WHOLE("Does a %63[a-z] have wheels?%n", w)) return (e = entity(w, strlen(w))) && e->wheels == yes;
    if (WHOLE("Is a %63[a-z] usually %63[a-z]?%n", w, x))
        return (e = entity(w, strlen(w))) && e->color && (strcmp(e->color, x) == 0) == yes;
    if (WHOLE("Is a %63[a-z] bigger than a %63[a-z]?%n", w, x))
        return (e = entity(w, strlen(w))) && (o = entity(x, strlen(x))) && abs(e->size - o->size) >= 2 &&
               (e->size > o->size) == yes;
    if (WHOLE("Is a %63[a-z] a %63[a-z]?%n", w, x))
        return (e = entity(w, strlen(w))) && (strcmp(wd_cat_names[e->cat], x) == 0) == yes;
#undef WHOLE
    return 0;
}

static void test_api(void) {
    for (int f = 0; f < T2_WORLD_COUNT; f++)
        T2_CHECK(t2_world_family_parse(t2_world_family_name(f)) == f, "family %d name round trip", f);
    T2_CHECK(t2_world_family_parse("nope") == -1, "unknown family");
    T2_CHECK(t2_world_split_parse("test") == T2_WORLD_SPLIT_TEST && t2_world_split_parse("x") == -1, "splits");
    T2_CHECK(t2_world_family_held_out(T2_WORLD_KNOW) && !t2_world_family_held_out(T2_WORLD_DISPATCH) &&
             !t2_world_family_held_out(T2_WORLD_CAPTION), "held out");
    T2_CHECK(!strcmp(t2_world_family_metric(T2_WORLD_REASONING), "mc") &&
             !strcmp(t2_world_family_metric(T2_WORLD_TEXTVQA), "vqa") &&
             !strcmp(t2_world_family_metric(T2_WORLD_MATH), "exact") &&
             !strcmp(t2_world_family_metric(T2_WORLD_DISPATCH), "exact"), "metrics");
    t2_world_opts o = t2_world_defaults();
    T2_CHECK(o.image_size == 96 && o.difficulty == 1.0f, "defaults");
    t2_world_item it;
    o.image_size = 8;
    T2_CHECK(t2_world_make(0, 0, 0, &o, &it, rgb_a) == -1 && strstr(t2_last_error(), "image_size"), "bad size refused");
    T2_CHECK(t2_world_make(99, 0, 0, NULL, &it, rgb_a) == -1, "bad family refused");
    T2_CHECK(t2_world_make(T2_WORLD_TEXTVQA, 0, 0, NULL, &it, NULL) == -1, "image family without a buffer refused");
}

static void test_determinism(void) {
    for (int f = 0; f < T2_WORLD_COUNT; f++)
        for (uint64_t i = 0; i < 5; i++) {
            t2_world_item a, b, c;
            memset(rgb_a, 1, sizeof rgb_a), memset(rgb_b, 2, sizeof rgb_b);
            int ra = t2_world_make(f, T2_WORLD_SPLIT_TRAIN, i * 1000003u, NULL, &a, rgb_a);
            int rb = t2_world_make(f, T2_WORLD_SPLIT_TRAIN, i * 1000003u, NULL, &b, rgb_b);
            T2_CHECK(ra == 0 && rb == 0, "%s: make: %s", t2_world_family_name(f), t2_last_error());
            T2_CHECK(!memcmp(&a, &b, sizeof a) && (!a.has_image || !memcmp(rgb_a, rgb_b, sizeof rgb_a)),
                     "%s: item %llu is not deterministic", a.id, (unsigned long long)i);
            t2_world_make(f, T2_WORLD_SPLIT_TRAIN, i * 1000003u + 1, NULL, &c, rgb_b);
            int differ = strcmp(a.question, c.question) || strcmp(a.answer, c.answer) ||
                         (a.has_image && c.has_image && memcmp(rgb_a, rgb_b, sizeof rgb_a));
            T2_CHECK(differ, "%s and %s are identical", a.id, c.id);
        }
    // image families: a test image equals no train image among the first items
    t2_world_item a, b;
    t2_world_make(T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_TEST, 0, NULL, &a, rgb_a);
    int same = 0;
    for (int i = 0; i < 50; i++) {
        t2_world_make(T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_TRAIN, (uint64_t)i, NULL, &b, rgb_b);
        same += !memcmp(rgb_a, rgb_b, sizeof rgb_a);
    }
    T2_CHECK(same == 0, "test item 0 equals a train image");
}

static void test_validity(void) {
    static const char *labels[] = {"\\boxed{textvqa}", "\\boxed{math}", "\\boxed{code}", "\\boxed{reasoning}", "\\boxed{other}"};
    for (int d = 0; d <= 1; d++)
        for (int f = 0; f < T2_WORLD_COUNT; f++) {
            t2_world_opts o = t2_world_defaults();
            o.difficulty = (float)d;
            int bad = 0, seen_label[5] = {0}, images = 0, facts_checked = 0;
            for (int i = 0; i < 200 && bad < 3; i++) {
                t2_world_item it;
                if (t2_world_make(f, T2_WORLD_SPLIT_VALID, (uint64_t)i, &o, &it, rgb_a)) {
                    T2_CHECK(0, "%s-valid-%d (difficulty %d): %s", t2_world_family_name(f), i, d, t2_last_error());
                    bad++;
                    continue;
                }
                int ok = it.question[0] && it.answer[0] && !strchr(it.answer, '\n');
                if (f == T2_WORLD_REASONING) {
                    ok &= it.n_choices == 4 && it.answer[0] >= 'A' && it.answer[0] <= 'D' && !it.answer[1] &&
                          strstr(it.question, "\nA. ") && strstr(it.question, "\nD. ");
                    for (int k = 0; k < it.n_choices; k++) ok &= it.choices[k][0] != 0;
                } else if (f == T2_WORLD_DISPATCH) {
                    int l = -1;
                    for (int k = 0; k < 5; k++)
                        if (!strcmp(it.answer, labels[k])) l = k;
                    ok &= l >= 0 && strstr(it.question, "\\boxed{category}") != NULL;
                    if (l >= 0) seen_label[l]++;
                } else if (f == T2_WORLD_FACTS) {
                    ok &= it.n_choices == 0 && facts_answer_ok(&it);
                    facts_checked++;
                } else if (f == T2_WORLD_CAPTION) {
                    ok &= it.n_choices == 0 && (isdigit((unsigned char)it.answer[0]) || !strncmp(it.answer, "a ", 2));
                } else {
                    ok &= lower_word(it.answer) && it.n_choices == 0;
                }
                ok &= it.has_image == t2_world_family_has_images(f) || f == T2_WORLD_DISPATCH;
                if (it.has_image) {   // not blank: at least 2 distinct grey levels
                    int lv[256] = {0}, n = 0;
                    for (int p = 0; p < S * S; p++) {
                        int gy = (rgb_a[3 * p] + rgb_a[3 * p + 1] + rgb_a[3 * p + 2]) / 3;
                        n += !lv[gy]++;
                    }
                    ok &= n >= 2;
                    images++;
                }
                if (!ok) {
                    T2_CHECK(0, "%s (difficulty %d) invalid: q=\"%s\" a=\"%s\" choices=%d image=%d", it.id, d, it.question,
                             it.answer, it.n_choices, it.has_image);
                    bad++;
                }
            }
            if (f == T2_WORLD_FACTS) T2_CHECK(facts_checked == 200, "facts: %d of 200 answers re-derived", facts_checked);
            if (f == T2_WORLD_DISPATCH) {
                for (int k = 0; k < 5; k++) T2_CHECK(seen_label[k] >= 20, "dispatch label %s seen %d/200", labels[k], seen_label[k]);
                T2_CHECK(images > 20 && images < 150, "dispatch items with an image: %d/200", images);
            }
        }
}

static void test_vocabulary(void) {
    static char words[4096][sizeof ((t2_world_item *)0)->answer];
    int nw = 0, numbers[100] = {0}, nn = 0, maxnum = -1;
    for (int i = 0; i < 3000; i++) {
        t2_world_item it;
        if (t2_world_make(T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_TRAIN, (uint64_t)i, NULL, &it, rgb_a)) break;
        const char *a = it.answer;
        if (isdigit((unsigned char)a[0])) {
            int v = atoi(a);
            T2_CHECK(v >= 0 && v <= 99, "%s: number %d outside 0..99", it.id, v);
            if (v >= 0 && v <= 99) nn += !numbers[v]++;
            if (v > maxnum) maxnum = v;
        } else if (!strstr(it.question, "plate")) {
            int k = 0;
            while (k < nw && strcmp(words[k], a)) k++;
            if (k == nw && nw < 4096) snprintf(words[nw++], sizeof words[0], "%s", a);
            size_t l = strlen(a);
            T2_CHECK(l >= 3 && l <= 7, "%s: word \"%s\" not 3..7 letters", it.id, a);
        }
    }
    printf("textvqa over 3000 items: %d distinct words, %d distinct numbers, max %d\n", nw, nn, maxnum);
    T2_CHECK(nw >= 100, "only %d distinct textvqa words", nw);
    T2_CHECK(nn >= 95 && maxnum == 99, "numbers: %d distinct, max %d", nn, maxnum);
}

// Scene captions against the pixels: the objects are found again as connected regions of a palette
// colour (the palette is the world's spec; the generator's object list is not used), each classified
// by size (area: a small object is at most ~200 px at 96², a big one at least ~280) and shape (area /
// bounding box: square ~1, circle ~0.79, triangle ~0.5). The caption's groups must give the same
// (size, colour, shape) counts, listed left to right by the centre of each group's leftmost member.
// Within 30 (Euclidean, RGB) of a palette colour.
static int near_colour(const uint8_t *px, const int want[3]) {
    int dr = px[0] - want[0], dg = px[1] - want[1], db = px[2] - want[2];
    return dr * dr + dg * dg + db * db < 900;
}

static void test_captions(void) {
    static const char *cols[6] = {"red", "green", "blue", "yellow", "purple", "orange"};
    static const int pal[6][3] = {{220, 40, 40}, {40, 160, 60}, {40, 80, 220}, {240, 205, 30}, {140, 60, 180}, {245, 135, 25}};
    static const char *shapes[3] = {"circle", "square", "triangle"};
    static int label[S * S], stack[S * S];
    int scenes = 0, texts = 0, multi = 0;
    for (int i = 0; i < 300; i++) {
        t2_world_item it;
        if (t2_world_make(T2_WORLD_CAPTION, T2_WORLD_SPLIT_VALID, (uint64_t)i, NULL, &it, rgb_a)) {
            T2_CHECK(0, "caption %d: %s", i, t2_last_error());
            continue;
        }
        if (!isdigit((unsigned char)it.answer[0])) {
            texts++;
            T2_CHECK(!strncmp(it.answer, "a sign that says ", 17) || !strncmp(it.answer, "a jar with a label that says ", 29) ||
                     !strncmp(it.answer, "a door with the number ", 23) || !strncmp(it.answer, "a price tag of ", 15) ||
                     !strncmp(it.answer, "a car with the number plate ", 28), "%s: caption \"%s\"", it.id, it.answer);
            continue;
        }
        scenes++;
        // found: count[big][colour][shape], leftmost x of each kind
        int found[2][6][3] = {{{0}}}, left[2][6][3];
        memset(label, 0, sizeof label);
        for (int p = 0; p < S * S; p++) {
            if (label[p]) continue;
            int c = -1;
            for (int k = 0; k < 6 && c < 0; k++)
                if (near_colour(rgb_a + 3 * p, pal[k])) c = k;
            if (c < 0) continue;
            int n = 0, area = 0, x0 = S, x1 = -1, y0 = S, y1 = -1;
            stack[n++] = p, label[p] = 1;
            while (n) {
                int q = stack[--n], x = q % S, y = q / S;
                area++;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                int nb[4] = {x > 0 ? q - 1 : -1, x < S - 1 ? q + 1 : -1, y > 0 ? q - S : -1, y < S - 1 ? q + S : -1};
                for (int k = 0; k < 4; k++) {
                    int r = nb[k];
                    if (r >= 0 && !label[r] && near_colour(rgb_a + 3 * r, pal[c])) label[r] = 1, stack[n++] = r;
                }
            }
            if (area < 20) continue;   // edge pixels that happen to match
            double fill = (double)area / ((x1 - x0 + 1) * (y1 - y0 + 1));
            int big = area > 240, sh = fill > 0.9 ? 1 : fill > 0.65 ? 0 : 2;
            int cx2 = x0 + x1;   // twice the centre's x
            if (!found[big][c][sh]++ || cx2 < left[big][c][sh]) left[big][c][sh] = cx2;
        }
        // parse "k [big ]colour shape[s], ..."
        int said[2][6][3] = {{{0}}}, ok = 1, prev_left = -1, groups = 0, order_ok = 1;
        const char *a = it.answer;
        while (*a && ok) {
            char w1[16], w2[16], w3[16];
            int k, used = 0;
            if (sscanf(a, "%d %15s %15s%n", &k, w1, w2, &used) < 3) { ok = 0; break; }
            int big = !strcmp(w1, "big");
            if (big) {
                int more = 0;
                if (sscanf(a + used, " %15s%n", w3, &more) < 1) { ok = 0; break; }
                snprintf(w1, sizeof w1, "%s", w2), snprintf(w2, sizeof w2, "%s", w3), used += more;
            }
            size_t l = strlen(w2);
            if (l && w2[l - 1] == ',') w2[--l] = 0;
            if (k > 1 && l && w2[l - 1] == 's') w2[--l] = 0;
            int c = -1, sh = -1;
            for (int j = 0; j < 6; j++)
                if (!strcmp(w1, cols[j])) c = j;
            for (int j = 0; j < 3; j++)
                if (!strcmp(w2, shapes[j])) sh = j;
            if (c < 0 || sh < 0 || k < 1) { ok = 0; break; }
            said[big][c][sh] += k, groups++, multi += k > 1;
            if (found[big][c][sh] && left[big][c][sh] + 3 < prev_left) order_ok = 0;   // 1.5 px: anti-aliased edges
            if (found[big][c][sh]) prev_left = left[big][c][sh];
            a += used;
            while (*a == ',' || *a == ' ') a++;
        }
        T2_CHECK(ok && groups > 0, "%s: caption \"%s\" does not parse", it.id, it.answer);
        T2_CHECK(!memcmp(said, found, sizeof said), "%s: caption \"%s\" disagrees with the objects in the image", it.id, it.answer);
        T2_CHECK(order_ok, "%s: caption \"%s\" is not left to right", it.id, it.answer);
    }
    printf("captions: %d scenes checked against their pixels (%d groups of 2+), %d text images\n", scenes, multi, texts);
    T2_CHECK(scenes > 120 && texts > 60 && multi > 30, "caption mix: %d scenes, %d text images, %d groups of 2+", scenes, texts, multi);
}

// Thread safety: four threads make the same 40 image items; every copy matches the serial one.
typedef struct { int t; uint8_t *rgb; int ok; } thr;
// textvqa's glyph records spell what the answer says (price tags with their "$"), left to right, inside
// the image, each box holding ink (pixels of two clearly different colours); scenes record none.
static void test_glyphs(void) {
    int checked = 0;
    for (int d = 0; d <= 1; d++)
        for (uint64_t i = 0; i < 200; i++) {
            t2_world_item it;
            t2_world_opts o = t2_world_defaults();
            o.difficulty = (float)d;
            T2_CHECK(t2_world_make(T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_TEST, i, &o, &it, rgb_a) == 0, "make: %s", t2_last_error());
            char got[T2_WORLD_MAX_GLYPHS + 1], want[sizeof it.answer + 1];
            int n = 0, ok = 1;
            for (int k = 0; k < it.n_glyphs; k++) {
                const t2_world_glyph *g = &it.glyphs[k];
                got[n++] = (char)tolower((unsigned char)g->ch);
                ok &= g->x0 >= 0 && g->x0 < g->x1 && g->x1 <= S && g->y0 >= 0 && g->y0 < g->y1 && g->y1 <= S;
                if (k) ok &= g->x0 + g->x1 > it.glyphs[k - 1].x0 + it.glyphs[k - 1].x1;
                int lo = 999, hi = -1;
                for (int y = g->y0; y < g->y1; y++)
                    for (int x = g->x0; x < g->x1; x++) {
                        const uint8_t *px = rgb_a + 3 * (y * S + x);
                        int v = px[0] + px[1] + px[2];
                        if (v < lo) lo = v;
                        if (v > hi) hi = v;
                    }
                ok &= hi - lo > 90;
            }
            got[n] = 0;
            int price = strstr(it.question, "price") || strstr(it.question, "cost");
            snprintf(want, sizeof want, "%s%s", price ? "$" : "", it.answer);
            T2_CHECK(ok && !strcmp(got, want), "%s: glyphs '%s' (boxes %s) for the answer '%s'", it.id, got,
                     ok ? "fine" : "out of order, outside the image or without ink", want);
            checked++;
        }
    for (uint64_t i = 0; i < 50; i++) {
        t2_world_item it;
        T2_CHECK(t2_world_make(T2_WORLD_SCENE, T2_WORLD_SPLIT_TEST, i, NULL, &it, rgb_a) == 0, "make: %s", t2_last_error());
        T2_CHECK(it.n_glyphs == 0, "%s: a scene recorded %d glyphs", it.id, it.n_glyphs);
    }
    printf("glyphs: %d textvqa items spell their answers\n", checked);
}

static void *thr_run(void *p) {
    thr *a = p;
    uint8_t buf[S * S * 3];
    a->ok = 1;
    for (int i = 0; i < 40; i++) {
        t2_world_item it;
        int f = i % 2 ? T2_WORLD_KNOW : T2_WORLD_TEXTVQA;
        a->ok &= t2_world_make(f, T2_WORLD_SPLIT_TEST, (uint64_t)i, NULL, &it, buf) == 0 &&
                 !memcmp(buf, a->rgb + (size_t)i * S * S * 3, sizeof buf);
    }
    return NULL;
}
static void test_threads(void) {
    uint8_t *ref = malloc((size_t)40 * S * S * 3);
    for (int i = 0; i < 40; i++) {
        t2_world_item it;
        t2_world_make(i % 2 ? T2_WORLD_KNOW : T2_WORLD_TEXTVQA, T2_WORLD_SPLIT_TEST, (uint64_t)i, NULL, &it, ref + (size_t)i * S * S * 3);
    }
    pthread_t th[4];
    thr a[4];
    for (int t = 0; t < 4; t++) a[t] = (thr){t, ref, 0}, pthread_create(&th[t], NULL, thr_run, &a[t]);
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL), T2_CHECK(a[t].ok, "thread %d made different items", t);
    free(ref);
}

static void test_cli(const t2_test_env *e) {
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' world gen --family textvqa,reasoning,math,dispatch --split valid --n 20 --out '%s/gen' 2>&1",
                        e->t2, e->work);
    T2_CHECK(rc == 0, "t2 world gen failed (%d): %s", rc, out);
    free(out);
    static const char *fams[] = {"textvqa", "reasoning", "math", "dispatch"};
    for (int i = 0; i < 4; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/gen/%s-valid.jsonl", e->work, fams[i]);
        t2_eval_set set;
        if (t2_eval_load(T2_BENCH_JSONL, path, NULL, NULL, 0, &set)) {
            T2_CHECK(0, "eval cannot load %s: %s", path, t2_last_error());
            continue;
        }
        T2_CHECK(set.n == 20, "%s: %d items", path, set.n);
        if (i == 0) T2_CHECK(set.items[0].image && set.items[0].metric == T2_METRIC_VQA, "textvqa items have images, vqa metric");
        if (i == 1) T2_CHECK(set.items[0].n_choices == 4 && set.items[0].metric == T2_METRIC_MC, "reasoning is MC with 4 choices");
        if (i == 2) T2_CHECK(set.items[0].metric == T2_METRIC_EXACT && !set.items[0].image, "math: exact, no image");
        // the JSONL holds what t2_world_make makes
        t2_world_item it;
        t2_world_make(t2_world_family_parse(fams[i]), T2_WORLD_SPLIT_VALID, 3, NULL, &it, rgb_a);
        T2_CHECK(!strcmp(set.items[3].id, it.id) && !strcmp(set.items[3].answers[0], it.answer), "%s: item 3 matches", path);
        t2_eval_set_free(&set);
    }
    rc = t2_test_sh(&out, "'%s' world gen --family nope --split test --n 1 --out '%s/x' 2>&1", e->t2, e->work);
    T2_CHECK(rc != 0 && strstr(out, "unknown family"), "bad family flag: rc %d, %s", rc, out);
    free(out);
    rc = t2_test_sh(&out, "'%s' world gen --family math --split test --n -3 --out '%s/x' 2>&1", e->t2, e->work);
    T2_CHECK(rc != 0 && strstr(out, "--n"), "bad --n: rc %d, %s", rc, out);
    free(out);
    rc = t2_test_sh(&out, "'%s' world show --family know --split test --index 7 2>&1", e->t2);
    T2_CHECK(rc == 0 && strstr(out, "\"id\":\"know-test-7\""), "world show: %s", out);
    free(out);
}

// Regenerate three families' full test sets and compare with the checked-in checksums (scene: its
// count questions once drew objects whose size was uninitialised memory; a build or sanitizer that
// changes the stack would change the set).
static void test_checksums(const t2_test_env *e) {
    static const char *fams[] = {"textvqa", "reasoning", "scene"};
    for (int i = 0; i < 3; i++) {
        char *out = NULL, *want = NULL;
        int rc = t2_test_sh(&out, "'%s' world gen --family %s --split test --n 500 --out '%s/bench' --quiet 2>&1 && "
                                  "sh '%s/world/benchmarks/checksum.sh' '%s/bench' %s test",
                            e->t2, fams[i], e->work, e->src, e->work, fams[i]);
        int rw = t2_test_sh(&want, "cat '%s/world/benchmarks/%s-test.sha256'", e->src, fams[i]);
        T2_CHECK(rc == 0 && rw == 0 && strlen(out) >= 64 && !strncmp(out, want, 64),
                 "%s test set does not regenerate bit-identically: got %s want %s", fams[i], out, want);
        free(out);
        free(want);
    }
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    test_api();
    test_determinism();
    test_validity();
    test_vocabulary();
    test_captions();
    test_glyphs();
    test_threads();
    test_cli(&e);
    test_checksums(&e);
    return t2_test_done();
}
