// test_metrics.c — eval/metrics.c. Hand-checked vectors for every rule of vqaEval.py's answer
// normalisation and for the leave-one-out accuracy by number of matching humans; ANLS, exact
// match, GSM8K's last number and gold, multiple-choice letters. Then a cross-check against
// tests/ref/vqa_eval_ref.py, a port of the official vqaEval.py, on thousands of random-ish answers:
// every normalisation must be byte-equal and every accuracy bit-equal.
#include "testutil.h"
#include "eval/metrics.h"
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_norm(const char *in, const char *want) {
    char out[512];
    size_t n = t2_vqa_normalize(in, out, sizeof out);
    T2_CHECK(!strcmp(out, want) && n == strlen(want), "normalize(\"%s\") = \"%s\", want \"%s\"", in,
             out, want);
}

static void check_acc(const char *pred, const char *const *ans, int n, double want) {
    double got = t2_vqa_accuracy(pred, ans, n);
    T2_CHECK(fabs(got - want) < 1e-12, "accuracy(\"%s\") = %.17g, want %.17g", pred, got, want);
}

static void test_normalize(void) {
    // punctuation: the comma-in-number rule deletes every mark
    check_norm("100,978", "100978");
    check_norm("1,000-2", "10002");
    check_norm("yes,no", "yes no");            // a mark between non-spaces → space
    check_norm("yes, no", "yes no");           // a mark next to a space → deleted
    check_norm("hello !", "hello");
    check_norm("hello!world", "hello world");
    check_norm("x-ray - yes", "xray yes");     // per mark: one '-' next to a space deletes them all
    check_norm("(left)", "left");
    check_norm("a/b", "b");                    // "a b": the article goes
    check_norm("3:30", "3:30");                // ':' and '\'' are not in the list
    check_norm("it's", "it's");
    // periods
    check_norm("5.", "5");
    check_norm("2.5", "2.5");
    check_norm(".5", ".5");
    check_norm("1.2.3", "1.2.3");
    check_norm("U.S.A.", "usa");
    check_norm("yes.no", "yesno");
    {   // sub(..., re.UNICODE): only the first 32 periods go
        char in[128] = "", want[128] = "";
        for (int i = 0; i < 40; i++) strcat(in, "a.");
        strcat(in, "5");
        for (int i = 0; i < 32; i++) strcat(want, "a");
        for (int i = 0; i < 8; i++) strcat(want, "a.");
        strcat(want, "5");
        check_norm(in, want);
    }
    // number words (before articles), "none" → "0", nothing past ten
    check_norm("Two", "2");
    check_norm("none", "0");
    check_norm("ZERO", "0");
    check_norm("ten dogs", "10 dogs");
    check_norm("eleven", "eleven");
    check_norm("one two three four five six seven eight nine", "1 2 3 4 5 6 7 8 9");
    // articles
    check_norm("a dog", "dog");
    check_norm("The Cat", "cat");
    check_norm("an apple", "apple");
    check_norm("another", "another");
    check_norm("the", "");
    // contractions (after lower(): the capitalised keys "Im", "Ive" never match)
    check_norm("dont", "don't");
    check_norm("DONT", "don't");
    check_norm("youre", "you're");
    check_norm("twas", "'twas");
    check_norm("somebody'd", "somebodyd");
    check_norm("Im", "im");
    check_norm("yall'll", "y'all'll");
    // whitespace: newlines/tabs → space, strip, split/join
    check_norm("left\nright", "left right");
    check_norm("\tyes\n", "yes");
    check_norm("  big   red\r\nbus ", "big red bus");
    check_norm("", "");
    check_norm(" \n\t ", "");
    // Unicode: \d is any Nd digit, lower() is Unicode
    check_norm("\xd9\xa3,\xd9\xa4", "\xd9\xa3\xd9\xa4");          // ٣,٤ → ٣٤
    check_norm("\xc3\x89" "COLE", "\xc3\xa9" "cole");                // ÉCOLE → école
    check_norm("\xc4\xb0", "i\xcc\x87");                          // İ → i̇ (full mapping)
    check_norm("a\xc2\xa0" "b", "b");                              // NBSP splits
    // truncation: NUL-terminated, within cap
    char small[4];
    size_t n = t2_vqa_normalize("hello", small, sizeof small);
    T2_CHECK(n <= 3 && strlen(small) == n, "truncated length %zu", n);
}

static void test_accuracy(void) {
    // m humans say "2", the rest "3": (m·min(1,(m−1)/3) + (10−m)·min(1,m/3)) / 10
    const double want[11] = {0, 0.3, 0.6, 0.9, 1, 1, 1, 1, 1, 1, 1};
    for (int m = 0; m <= 10; m++) {
        const char *ans[10];
        for (int i = 0; i < 10; i++) ans[i] = i < m ? "2" : "3";
        double exact = 0;
        for (int i = 0; i < 10; i++) {
            double a = (i < m ? m - 1 : m) / 3.0;
            exact += a < 1 ? a : 1;
        }
        exact /= 10;
        check_acc("two", ans, 10, want[m]);
        T2_CHECK(t2_vqa_accuracy("two", ans, 10) == exact, "m=%d not bit-equal to the formula", m);
    }
    const char *mixed[10] = {"yes", "no", "yes", "no", "no", "no", "no", "no", "no", "no"};
    check_acc("Yes", mixed, 10, 0.6);
    check_acc("", mixed, 0, 0);
    // the human answers get processPunctuation only, and only when they differ
    const char *same[10] = {"Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two"};
    check_acc("two", same, 10, 0);               // "2" ≠ raw "Two"
    const char *comma[10] = {"100,978", "100,978", "100,978", "100,978", "x", "x", "x", "x", "x", "x"};
    check_acc("100978", comma, 10, 1);
    const char *bang[10] = {"yes!", "yes!", "yes!", "yes!", "no", "no", "no", "no", "no", "no"};
    check_acc("yes", bang, 10, 0);               // "yes!" → "yes " (never stripped) ≠ "yes"
    const char *dash[10] = {"x-ray", "x-ray", "x-ray", "no", "no", "no", "no", "no", "no", "no"};
    check_acc("X-Ray", dash, 10, 0.9);           // both sides → "x ray"
}

static void test_anls(void) {
    const char *hw[1] = {"hello  world"};
    T2_CHECK(t2_anls(" Hello World\n", hw, 1, 0.5) == 1, "exact");
    const char *hello[1] = {"hello"};
    T2_CHECK(fabs(t2_anls("helo", hello, 1, 0.5) - 0.8) < 1e-12, "one edit");
    const char *xyz[1] = {"xyz"};
    T2_CHECK(t2_anls("abc", xyz, 1, 0.5) == 0, "below threshold");
    const char *ax[1] = {"ax"};
    T2_CHECK(t2_anls("ab", ax, 1, 0.5) == 0.5, "NL = 0.5 is counted (score >= tau)");
    const char *abcd[1] = {"abcd"};
    T2_CHECK(t2_anls("ab", abcd, 1, 0.5) == 0.5, "two deletions of four");
    T2_CHECK(t2_anls("a", abcd, 1, 0.5) == 0, "three of four");
    const char *empty[1] = {""};
    T2_CHECK(t2_anls("", empty, 1, 0.5) == 1, "both empty");
    T2_CHECK(t2_anls("", hello, 1, 0.5) == 0, "empty prediction");
    T2_CHECK(t2_anls("x", hello, 0, 0.5) == 0, "no answers");
    const char *cafe[1] = {"cafe"};
    T2_CHECK(fabs(t2_anls("caf\xc3\xa9", cafe, 1, 0.5) - 0.75) < 1e-12, "code points, not bytes");
    const char *two[2] = {"dog", "cats"};
    T2_CHECK(fabs(t2_anls("Cat", two, 2, 0.5) - 0.75) < 1e-12, "max over answers");
}

static void test_exact(void) {
    const char *paris[2] = {"london", "paris"};
    T2_CHECK(t2_exact_match(" Paris\n", paris, 2) == 1, "trim + lower");
    T2_CHECK(t2_exact_match("Paris.", paris, 2) == 0, "punctuation counts");
    T2_CHECK(t2_exact_match("new  york", (const char *const[]){"new york"}, 1) == 0, "inner spaces count");
    T2_CHECK(t2_exact_match("", (const char *const[]){"  "}, 1) == 1, "both empty");
}

static void check_num(const char *text, const char *want) {
    char out[64];
    size_t n = t2_last_number(text, out, sizeof out);
    T2_CHECK(!strcmp(out, want) && n == strlen(want), "last_number(\"%s\") = \"%s\", want \"%s\"",
             text, out, want);
}

static void test_gsm8k(void) {
    check_num("The answer is 42.", "42");
    check_num("It costs $1,234.56 in total", "1234.56");
    check_num("so -5 apples", "-5");
    check_num("first 3 then 7", "7");
    check_num("no numbers here", "");
    check_num("Total: 1,000,000.", "1000000");
    check_num("a1b2", "2");
    check_num("x = 5.0", "5.0");
    check_num("-$7", "-7");
    check_num("It is 42...", "42..");          // lm-eval drops one final "." only
    check_num("Hmm...", "..");                 // ... and "..." is a match of [$0-9.,]{2,}
    char g[64];
    size_t n = t2_gsm8k_gold("She has 3 + 4 = <<3+4=7>>7 apples.\n#### 1,234", g, sizeof g);
    T2_CHECK(!strcmp(g, "1234") && n == 4, "gold \"%s\"", g);
    n = t2_gsm8k_gold("#### -5", g, sizeof g);
    T2_CHECK(!strcmp(g, "-5") && n == 2, "gold \"%s\"", g);
    T2_CHECK(t2_gsm8k_score("so the total is 1,234 dollars.", "1234") == 1, "score comma");
    T2_CHECK(t2_gsm8k_score("x = 5.0", "5") == 1, "score 5.0 = 5");
    T2_CHECK(t2_gsm8k_score("I get 6", "5") == 0, "score wrong");
    T2_CHECK(t2_gsm8k_score("The answer is $18.", "18") == 1, "score $ and final .");
    T2_CHECK(t2_gsm8k_score("nothing", "18") == 0, "score no number");
    T2_CHECK(t2_gsm8k_score("It is 42...", "42") == 0, "score 42.. (as lm-eval)");
    T2_CHECK(t2_gsm8k_score("-3", "-3.00") == 1, "score negative");
}

static void check_mc(const char *pred, int want) {
    const char *ch[4] = {"Paris", "London", "Berlin", "Rome"};
    int got = t2_mc_extract(pred, ch, 4);
    T2_CHECK(got == want, "mc(\"%s\") = %d, want %d", pred, got, want);
}

static void test_mc(void) {
    check_mc("B", 1);
    check_mc("(C)", 2);
    check_mc("D.", 3);
    check_mc(" b \n", 1);
    check_mc("**A**", 0);
    check_mc("The answer is C", 2);
    check_mc("Answer: (A)", 0);
    check_mc("the answer is B, not C.", 1);
    check_mc("I think B) London", 1);
    check_mc("Looking at it... C. Berlin is right", 2);
    check_mc("(B) or (C)", 1);                     // ambiguous: the first explicit letter
    check_mc("London", 1);
    check_mc("It is berlin, I think.", 2);
    check_mc("E", -1);                             // out of range, and no choice text
    check_mc("A cat", -1);
    check_mc("the answer is a city", -1);
    check_mc("", -1);
    const char *food[2] = {"cat", "cat food"};
    T2_CHECK(t2_mc_extract("cat food", food, 2) == 1, "longest text at the same place");
}

// ---- the cross-check against the port of vqaEval.py ----------------------------------------------

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void test_reference(const t2_test_env *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vqa_ref.json", e->work);
    int rc = t2_test_python(e, "vqa_eval_ref.py", "'%s' 3000", path);
    T2_CHECK(rc == 0, "vqa_eval_ref.py exit %d", rc);
    char *text = read_all(path);
    T2_CHECK(text != NULL, "cannot read %s", path);
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    T2_CHECK(root != NULL, "bad JSON in %s", path);
    if (!root) return;
    cJSON *norm = cJSON_GetObjectItem(root, "norm"), *acc = cJSON_GetObjectItem(root, "acc"), *it;
    int nn = 0, nbad = 0, na = 0, abad = 0;
    size_t cap = 1 << 16;
    char *out = malloc(cap);
    cJSON_ArrayForEach(it, norm) {
        const char *in = cJSON_GetArrayItem(it, 0)->valuestring;
        const char *want = cJSON_GetArrayItem(it, 1)->valuestring;
        t2_vqa_normalize(in, out, cap);
        nn++;
        if (strcmp(out, want) && nbad++ < 10)
            printf("  normalize mismatch: in \"%s\" → C \"%s\", ref \"%s\"\n", in, out, want);
    }
    cJSON_ArrayForEach(it, acc) {
        const char *pred = cJSON_GetObjectItem(it, "pred")->valuestring;
        cJSON *ans = cJSON_GetObjectItem(it, "answers"), *a;
        const char *answers[16];
        int n = 0;
        cJSON_ArrayForEach(a, ans) if (n < 16) answers[n++] = a->valuestring;
        double want = cJSON_GetObjectItem(it, "acc")->valuedouble;
        double got = t2_vqa_accuracy(pred, answers, n);
        na++;
        if (got != want && abad++ < 10)
            printf("  accuracy mismatch: pred \"%s\" (gt0 \"%s\") → C %.17g, ref %.17g\n", pred,
                   answers[0], got, want);
    }
    free(out);
    cJSON_Delete(root);
    printf("vqaEval.py cross-check: normalisation %d/%d agree, accuracy %d/%d agree\n", nn - nbad,
           nn, na - abad, na);
    T2_CHECK(nn > 1000 && nbad == 0, "%d of %d normalisations differ", nbad, nn);
    T2_CHECK(na > 1000 && abad == 0, "%d of %d accuracies differ", abad, na);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    test_normalize();
    test_accuracy();
    test_anls();
    test_exact();
    test_gsm8k();
    test_mc();
    test_reference(&e);
    return t2_test_done();
}
