// test_experts.c — inference-time adaptation (experts/, docs/adaptation.md): the --adapt grammar and
// \boxed{label} parsing (malformed, missing, unknown labels); CEM converging to a known optimum on
// synthetic fitnesses (smooth, and a stepped one that only the tie-break can resolve); then on a
// tiny random LLaVA (vlm_fixtures.py chatmodel, decomposed by `t2 svf decompose`) with random experts
// made through the svf API: registry errors (missing file, duplicate name, fingerprint of other
// weights) are clear; 'other' / unknown labels apply exactly the base weights even after an expert;
// `t2 ask --adapt none` is bit-identical to no flag; the same request twice with prompt gives the
// same choice; expert / mix / classifier answer through ask --json with the pass timings; eval
// records choices, the confusion and the ratio; `t2 adapt fewshot` writes an expert ask reuses.
#include "testutil.h"
#include "core/error.h"
#include "core/util.h"
#include "experts/cem.h"
#include "experts/dispatch.h"
#include "experts/registry.h"
#include "fusion/vlm.h"
#include "server/engine.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_labels(void) {
    struct { const char *text, *label; int found; } cases[] = {
        {"\\boxed{math}", "math", 1},
        {"Classification: \\boxed{ Math }.", "math", 1},
        {"\\boxed{textvqa.}", "textvqa", 1},
        {"I think \\boxed{code} no wait \\boxed{reasoning}", "reasoning", 1},
        {"boxed{code}", "code", 1},
        {"\\BOXED {Other}", "other", 1},
        {"\\boxed{}", "", 1},
        {"\\boxed{math", "", 0},
        {"math", "", 0},
        {"", "", 0},
        {"}{\\boxed", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[64];
        int f = t2_dispatch_parse_label(cases[i].text, label, sizeof label);
        T2_CHECK(f == cases[i].found && !strcmp(label, cases[i].label), "parse_label('%s') = %d '%s', want %d '%s'",
                 cases[i].text, f, label, cases[i].found, cases[i].label);
    }
    char small[4];
    T2_CHECK(t2_dispatch_parse_label("\\boxed{reasoning}", small, sizeof small) == 1 && !strcmp(small, "rea"), "truncation: '%s'", small);
}

static void check_specs(void) {
    t2_adapt_spec s;
    T2_CHECK(t2_adapt_parse(NULL, &s) == 0 && s.kind == T2_ADAPT_NONE && !strcmp(s.text, "none"), "NULL → none");
    T2_CHECK(t2_adapt_parse("none", &s) == 0 && s.kind == T2_ADAPT_NONE, "none");
    T2_CHECK(t2_adapt_parse("prompt", &s) == 0 && s.kind == T2_ADAPT_PROMPT && t2_adapt_per_request(&s), "prompt");
    T2_CHECK(t2_adapt_parse("classifier", &s) == 0 && s.kind == T2_ADAPT_CLASSIFIER, "classifier");
    T2_CHECK(t2_adapt_parse("expert:math", &s) == 0 && s.kind == T2_ADAPT_EXPERT && !strcmp(s.arg, "math") && !t2_adapt_per_request(&s), "expert:");
    T2_CHECK(t2_adapt_parse("fewshot:shots.jsonl", &s) == 0 && s.kind == T2_ADAPT_FEWSHOT && !strcmp(s.arg, "shots.jsonl"), "fewshot:");
    T2_CHECK(t2_adapt_parse("mix:math=0.7,code=0.3", &s) == 0 && s.kind == T2_ADAPT_MIX && s.n_mix == 2 &&
             !strcmp(s.mix_names[1], "code") && fabsf(s.mix_alpha[0] - 0.7f) < 1e-6f, "mix:");
    const char *bad[] = {"promt", "expert:", "fewshot:", "mix:", "mix:math", "mix:math=x", "mix:math=1,", "mix:math=1,math=2",
                         "mix:Math=1", "mix:math=inf", "mix:math=1e39", "classifier2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = t2_adapt_parse(bad[i], &s);
        T2_CHECK(rc == -1 && strstr(t2_last_error(), "--adapt"), "'%s' accepted (or unclear: %s)", bad[i], t2_last_error());
    }
    t2_adapt_parse("promt", &s);
    T2_CHECK(strstr(t2_last_error(), "prompt | classifier") != NULL, "the error shows the grammar: %s", t2_last_error());
}

// Synthetic fitnesses with a known optimum.
static const float target[5] = {0.2f, 0.7f, 0.5f, 0.05f, 0.9f};
static int smooth(void *ctx, const float *x, double *f, double *tie) {
    int D = *(int *)ctx;
    double s = 0;
    for (int d = 0; d < D; d++) s += (x[d] - target[d]) * (x[d] - target[d]);
    *f = -s;
    *tie = 0;
    return 0;
}
// Stepped like an accuracy on 4 examples: every x within 0.3 of the target scores 1; the tie-break
// (like the answers' log-likelihood) is what leads to the exact optimum.
static int stepped(void *ctx, const float *x, double *f, double *tie) {
    int D = *(int *)ctx;
    double s = 0;
    for (int d = 0; d < D; d++) s += (x[d] - target[d]) * (x[d] - target[d]);
    double dist = sqrt(s);
    *f = floor(4 * fmax(0, 1 - dist / 0.3) + 0.999) / 4;
    *f = *f > 1 ? 1 : *f;
    *tie = -dist;
    return 0;
}
static int failing(void *ctx, const float *x, double *f, double *tie) { return t2_fail("fitness broke"); }

static void check_cem(void) {
    int D = 5;
    t2_cem_opts o = t2_cem_defaults(D);
    o.init_mean = 1.0f / D;
    t2_cem_result r;
    T2_CHECK(t2_cem_run(&o, smooth, &D, &r) == 0, "cem: %s", t2_last_error());
    double worst = 0;
    for (int d = 0; d < D; d++) worst = fmax(worst, fabs(r.best[d] - target[d]));
    printf("cem smooth: %d generations, %d evaluations, worst |α - α*| %.4f\n", r.generations, r.evaluations, worst);
    T2_CHECK(worst < 0.02, "cem did not converge on the smooth fitness: %.4f", worst);
    T2_CHECK(r.evaluations == r.generations * 32, "population 32: %d evaluations in %d generations", r.evaluations, r.generations);
    t2_cem_result_free(&r);
    // samples stay in [0, 1]: an optimum outside is reached at the bound
    int D1 = 1;
    t2_cem_opts o1 = t2_cem_defaults(1);
    o1.init_mean = 0.5f;
    o1.lo = 0, o1.hi = 0.6f;
    T2_CHECK(t2_cem_run(&o1, smooth, &D1, &r) == 0 && fabsf(r.best[0] - 0.2f) < 0.02f, "1-d: %.4f", r.best ? r.best[0] : -1);
    t2_cem_result_free(&r);
    o.seed = 5;
    T2_CHECK(t2_cem_run(&o, stepped, &D, &r) == 0, "cem stepped: %s", t2_last_error());
    worst = 0;
    for (int d = 0; d < D; d++) worst = fmax(worst, fabs(r.best[d] - target[d]));
    printf("cem stepped (accuracy-like, tie-break): fitness %.2f, worst |α - α*| %.4f in %d generations\n", r.best_fitness, worst,
           r.generations);
    T2_CHECK(r.best_fitness == 1.0 && worst < 0.03, "the tie-break did not lead to the optimum: %.4f", worst);
    t2_cem_result_free(&r);
    T2_CHECK(t2_cem_run(&o, failing, &D, &r) == -1 && strstr(t2_last_error(), "fitness broke") && !r.best, "a failing fitness stops the search");
    o.population = 1;
    T2_CHECK(t2_cem_run(&o, smooth, &D, &r) == -1 && strstr(t2_last_error(), "population"), "bad settings refused");
}

// ---------------------------------------------------------------------------------------------

static const t2_test_env *E;

static void write_text(const char *path, const char *text) {
    T2_CHECK(t2_write_file_atomic(path, text, strlen(text)) == 0, "cannot write %s", path);
}

static const char *REGISTRY =
    "{\"format\": \"t2-experts\", \"version\": 1, \"classifier\": \"dispatch\", \"experts\": [\n"
    " {\"name\": \"textvqa\", \"file\": \"textvqa.safetensors\", \"modality\": \"vision\", \"dispatch\": {\"label\": \"textvqa\", \"description\": \"read text in the image\"}},\n"
    " {\"name\": \"math\", \"file\": \"math.safetensors\", \"modality\": \"text\", \"dispatch\": {\"label\": \"math\", \"description\": \"word problem\"}},\n"
    " {\"name\": \"code\", \"file\": \"code.safetensors\", \"modality\": \"text\", \"dispatch\": {\"label\": \"code\", \"description\": \"program output\"}},\n"
    " {\"name\": \"reasoning\", \"file\": \"reasoning.safetensors\", \"modality\": \"text\", \"dispatch\": {\"label\": \"reasoning\", \"description\": \"multiple choice facts\"}},\n"
    " {\"name\": \"dispatch\", \"file\": \"dispatch.safetensors\", \"modality\": \"text\"}\n"
    "]}\n";

// The registry-level checks: errors name the file and entry; the prompt matches world/world.c's.
static void check_registry(const char *model, const char *edir) {
    char path[2048], text[4096];
    t2_registry *r = t2_registry_load(model, NULL);
    T2_CHECK(r != NULL, "registry: %s", t2_last_error());
    if (!r) return;
    T2_CHECK(t2_registry_count(r) == 5 && t2_registry_classifier(r) == 4 && t2_registry_find_label(r, "MATH") == 1 &&
             t2_registry_find_label(r, "other") == -1 && t2_registry_at(r, 0)->modality == T2_MODALITY_VISION, "registry contents");
    char *p = t2_registry_prompt(r, "What is 2+3?");
    const char *want = "Classify the request into one category: textvqa (read text in the image), math (word problem), "
                       "code (program output), reasoning (multiple choice facts), other (anything else). Answer "
                       "\\boxed{category}.\nRequest: What is 2+3?";
    T2_CHECK(!strcmp(p, want), "the prompt differs from the world's dispatch prompt:\n%s", p);
    free(p);
    t2_registry_free(r);
    // errors
    struct { const char *name, *json, *expect; } bad[] = {
        {"missing file", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"a\", \"file\": \"nope.safetensors\"}]}", "nope.safetensors does not exist"},
        {"duplicate", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"math\", \"file\": \"math.safetensors\"}, {\"name\": \"math\", \"file\": \"code.safetensors\"}]}", "duplicate name 'math'"},
        {"version 1.9", "{\"format\": \"t2-experts\", \"version\": 1.9, \"experts\": []}", "\"version\" must be 1"},
        {"modality 5", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"math\", \"file\": \"math.safetensors\", \"modality\": 5}]}",
         "modality '(not a string)'"},
        {"duplicate label", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"a\", \"file\": \"math.safetensors\", \"dispatch\": {\"label\": \"x\", \"description\": \"d\"}}, {\"name\": \"b\", \"file\": \"code.safetensors\", \"dispatch\": {\"label\": \"x\", \"description\": \"e\"}}]}", "same dispatch label 'x'"},
        {"other", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"a\", \"file\": \"math.safetensors\", \"dispatch\": {\"label\": \"other\", \"description\": \"d\"}}]}", "'other' is reserved"},
        {"format", "{\"format\": \"t2-expert\", \"version\": 1, \"experts\": []}", "expected 't2-experts'"},
        {"version", "{\"format\": \"t2-experts\", \"version\": 2, \"experts\": []}", "\"version\" must be 1"},
        {"modality", "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"a\", \"file\": \"math.safetensors\", \"modality\": \"audio\"}]}", "modality 'audio'"},
        {"classifier", "{\"format\": \"t2-experts\", \"version\": 1, \"classifier\": \"zz\", \"experts\": [{\"name\": \"a\", \"file\": \"math.safetensors\"}]}", "'zz', which is not an entry"},
        {"json", "{\"format\": ", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/bad.json", edir);
        write_text(path, bad[i].json);
        t2_registry *rb = t2_registry_load(model, path);
        T2_CHECK(!rb && strstr(t2_last_error(), bad[i].expect) && strstr(t2_last_error(), "bad.json"),
                 "%s: %s", bad[i].name, rb ? "accepted" : t2_last_error());
        t2_registry_free(rb);
    }
    // fingerprint of other weights: found when the expert loads, naming the entry
    snprintf(path, sizeof path, "%s/math.safetensors", edir);
    snprintf(text, sizeof text, "%s/alien.safetensors", edir);
    T2_CHECK(t2_test_python(E, "experts_fixtures.py", "refingerprint '%s' '%s'", path, text) == 0, "refingerprint failed");
    snprintf(path, sizeof path, "%s/alien.json", edir);
    write_text(path, "{\"format\": \"t2-experts\", \"version\": 1, \"experts\": [{\"name\": \"alien\", \"file\": \"alien.safetensors\"}]}");
    t2_registry *ra = t2_registry_load(model, path);
    t2_st *st = t2_st_open(model);
    const t2_svf *svf = ra && st ? t2_registry_svf(ra, st, NULL) : NULL;
    T2_CHECK(svf != NULL, "alien registry: %s", t2_last_error());
    const t2_expert *ex = svf ? t2_registry_expert(ra, 0) : NULL;
    printf("fingerprint mismatch: %s\n", t2_last_error());
    T2_CHECK(!ex && strstr(t2_last_error(), "alien") && strstr(t2_last_error(), "fingerprint"), "fingerprint: %s", t2_last_error());
    t2_registry_free(ra);
    t2_st_close(st);
    // `t2 experts list`
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' experts list --model '%s' --prompt 'What is 2+3?' 2>&1", E->t2, model);
    T2_CHECK(rc == 0 && out && strstr(out, "| math | text | math | word problem |") && strstr(out, "dispatch (classifier)") &&
             strstr(out, "Request: What is 2+3?") && !strstr(out, "ERROR"), "experts list (rc %d):\n%s", rc, out);
    free(out);
    rc = t2_test_sh(&out, "'%s' experts list --model '%s' --registry '%s/alien.json' 2>&1", E->t2, model, edir);
    T2_CHECK(rc == 1 && out && strstr(out, "ERROR") && strstr(out, "fingerprint"), "experts list flags the alien expert (rc %d):\n%s", rc, out);
    free(out);
}

// 'other', unknown labels and no box apply exactly the base weights, also right after an expert.
static void check_base_explicit(const char *model) {
    t2_vlm *m = t2_vlm_load(model, 2, 1);
    T2_CHECK(m != NULL, "load: %s", t2_last_error());
    if (!m) return;
    t2_adapt_spec spec;
    t2_adapt_parse("prompt", &spec);
    t2_dispatcher *d = t2_dispatcher_new(m, &spec, NULL);
    T2_CHECK(d != NULL, "dispatcher: %s", t2_last_error());
    if (!d) { t2_vlm_free(m); return; }
    t2_lm *lm = t2_vlm_lm(m);
    int V = t2_vlm_lm_cfg(m)->vocab_size;
    int32_t ids[6] = {1, 5, 9, 2, 7, 3};
    float *base = t2_malloc(sizeof(float) * V), *got = t2_malloc(sizeof(float) * V);
    t2_lm_state *st = t2_lm_state_new(lm, 64, 16);
    t2_lm_forward(lm, st, ids, NULL, NULL, 6, base, 0);
    const char *texts[] = {"\\boxed{math}", "\\boxed{other}", "\\boxed{code}", "\\boxed{poetry}", "\\boxed{reasoning}", "no box at all"};
    const char *want[] = {"math", "base", "code", "base", "reasoning", "base"};
    for (int i = 0; i < 6; i++) {
        t2_adapt_choice c;
        t2_dispatcher_choice_of_text(d, texts[i], &c);
        T2_CHECK(!strcmp(c.choice, want[i]), "'%s' → %s, want %s", texts[i], c.choice, want[i]);
        T2_CHECK(t2_dispatcher_apply(d, &c) == 0, "apply: %s", t2_last_error());
        t2_lm_state_rewind(st, 0);
        t2_lm_forward(lm, st, ids, NULL, NULL, 6, got, 0);
        int same = !memcmp(base, got, sizeof(float) * V);
        T2_CHECK(same == !strcmp(want[i], "base"), "'%s': logits %s the base's", texts[i], same ? "equal" : "differ from");
    }
    t2_svf_adapter_stats s = t2_svf_adapter_stats_get(t2_dispatcher_adapter(d));
    printf("dispatch: 6 choices, adapter %ld misses, %ld hits, last recompose %.2f ms\n", s.misses, s.hits, s.last_recompose_s * 1e3);
    // a first pass that does not fit its context is no error: the base weights, and a note that says why
    t2_dispatch_opts small = t2_dispatch_defaults();
    small.n_ctx = 24;
    t2_dispatcher *d2 = t2_dispatcher_new(m, &spec, &small);
    t2_adapt_choice c2;
    int rc2 = d2 ? t2_dispatcher_choose(d2, "What is 2+3?", NULL, 0, &c2) : -1;
    T2_CHECK(rc2 == 0 && !strcmp(c2.choice, "base") && strstr(c2.note, "more than its 24-token context"),
             "first pass over its context: rc %d, choice '%s', note '%s' (%s)", rc2, rc2 == 0 ? c2.choice : "",
             rc2 == 0 ? c2.note : "", rc2 ? t2_last_error() : "");
    t2_dispatcher_free(d2);
    // a mixture whose z overflows a float is refused
    const t2_expert *one[1] = {t2_registry_expert(t2_dispatcher_registry(d), 1)};
    float a1 = 1, big[2] = {3e38f, 3e38f};
    t2_expert *x = one[0] ? t2_expert_mix(one, 1, &a1, 0) : NULL;
    if (x) {
        x->z[0] = 2.0f;
        const t2_expert *two[2] = {x, one[0]};
        t2_expert *bad = t2_expert_mix(two, 2, big, 0);
        T2_CHECK(!bad && strstr(t2_last_error(), "is not finite"), "an overflowing mixture: %s", bad ? "accepted" : t2_last_error());
        t2_expert_free(bad);
        t2_expert_free(x);
    } else T2_CHECK(0, "expert 1: %s", t2_last_error());
    t2_lm_state_free(st);
    free(base);
    free(got);
    t2_dispatcher_free(d);
    t2_vlm_free(m);
}

// Pull "KEY": value (a string or number) out of a one-line JSON object.
static void json_field(const char *json, const char *key, char *out, size_t cap) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    while (*p == ' ') p++;
    size_t n = strcspn(p, ",}");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static void check_cli(const char *model) {
    char *a = NULL, *b = NULL;
    const char *q = "What is 2+3?";
    // --adapt none is bit-identical to no flag (the answer and the prompt's logits)
    int rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 8 --json --dump-logits '%s/l0.st' '%s' 2>&1", E->t2, model, E->work, q);
    int rc2 = t2_test_sh(&b, "'%s' ask --model '%s' -n 8 --json --adapt none --dump-logits '%s/l1.st' '%s' 2>&1", E->t2, model, E->work, q);
    char f1[256], f2[256];
    json_field(a, "answer", f1, sizeof f1);
    json_field(b, "answer", f2, sizeof f2);
    T2_CHECK(rc == 0 && rc2 == 0 && f1[0] && !strcmp(f1, f2), "--adapt none answer differs: %s vs %s", a, b);
    free(a), free(b);
    rc = t2_test_sh(NULL, "cd '%s' && cmp -s l0.st l1.st", E->work);
    T2_CHECK(rc == 0, "--adapt none: the logits are not bit-identical");
    // an expert changes the logits
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 8 --json --adapt expert:math --dump-logits '%s/l2.st' '%s' 2>&1", E->t2, model, E->work, q);
    T2_CHECK(rc == 0 && strstr(a, "\"adapt\":\"expert\"") && strstr(a, "\"expert\":\"math\""), "expert:math: %s", a);
    free(a);
    T2_CHECK(t2_test_sh(NULL, "cd '%s' && ! cmp -s l0.st l2.st", E->work) == 0, "expert:math did not change the logits");
    // prompt twice: the same choice; timings and ratio recorded
    char c1[128], c2[128], fp[64], sp[64];
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 8 --json --adapt prompt '%s' 2>&1", E->t2, model, q);
    rc2 = t2_test_sh(&b, "'%s' ask --model '%s' -n 8 --json --adapt prompt '%s' 2>&1", E->t2, model, q);
    printf("ask --adapt prompt: %s", a ? a : "");
    json_field(a, "choice", c1, sizeof c1);
    json_field(b, "choice", c2, sizeof c2);
    json_field(a, "first_pass_ms", fp, sizeof fp);
    json_field(a, "second_pass_ms", sp, sizeof sp);
    T2_CHECK(rc == 0 && rc2 == 0 && c1[0] && !strcmp(c1, c2), "prompt twice: '%s' vs '%s'", c1, c2);
    T2_CHECK(atof(fp) > 0 && atof(sp) > 0 && strstr(a, "first_to_second_ratio") && strstr(a, "first_pass_output"),
             "prompt: timings missing: %s", a);
    printf("tiny model: first pass %s ms, second pass %s ms (8 tokens)\n", fp, sp);
    free(a), free(b);
    // a mixture and the classifier
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 4 --json --adapt mix:math=0.6,code=0.4 '%s' 2>&1", E->t2, model, q);
    T2_CHECK(rc == 0 && strstr(a, "\"mixture\":{\"math\":0.6") && strstr(a, "\"choice\":\"mixture\""), "mix: %s", a);
    free(a);
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 4 --json --adapt classifier '%s' 2>&1", E->t2, model, q);
    T2_CHECK(rc == 0 && strstr(a, "\"adapt\":\"classifier\""), "classifier: %s", a);
    free(a);
    // refusals are clear
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 4 --adapt expert:poetry '%s' 2>&1", E->t2, model, q);
    T2_CHECK(rc != 0 && strstr(a, "no expert named 'poetry'") && strstr(a, "math"), "unknown expert: %s", a);
    free(a);
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 4 --adapt mix:math=1,nope=1 '%s' 2>&1", E->t2, model, q);
    T2_CHECK(rc != 0 && strstr(a, "'nope'"), "unknown mixture expert: %s", a);
    free(a);
    // an image is shown to the first pass too
    rc = t2_test_sh(&a, "'%s' ask --model '%s' -n 4 --json --adapt prompt -i '%s/wide.png' 'What does the sign say?' 2>&1", E->t2, model, E->work);
    T2_CHECK(rc == 0 && strstr(a, "\"images\": 1") && strstr(a, "\"adapt\":\"prompt\""), "prompt with an image: %s", a);
    free(a);
}

static void check_eval_and_fewshot(const char *model) {
    char path[1200];
    snprintf(path, sizeof path, "%s/items.jsonl", E->work);
    write_text(path,
               "{\"id\": \"m1\", \"question\": \"What is 2+3?\", \"answers\": [\"5\"], \"task\": \"math\", \"metric\": \"exact\"}\n"
               "{\"id\": \"m2\", \"question\": \"What is 4+4?\", \"answers\": [\"8\"], \"task\": \"math\", \"metric\": \"exact\"}\n"
               "{\"id\": \"c1\", \"question\": \"What does print(1) output?\", \"answers\": [\"1\"], \"task\": \"code\", \"metric\": \"exact\"}\n"
               "{\"id\": \"t1\", \"image\": \"wide.png\", \"question\": \"What does the sign say?\", \"answers\": [\"stop\"], \"task\": \"textvqa\", \"metric\": \"exact\"}\n");
    char *out = NULL;
    int rc = t2_test_sh(&out, "'%s' eval --model '%s' --bench jsonl --data '%s' --out '%s/ev' -n 4 -q --adapt prompt 2>&1", E->t2, model, path, E->work);
    printf("%s", out ? out : "");
    T2_CHECK(rc == 0 && out && strstr(out, "adaptation prompt: first pass"), "eval --adapt prompt (rc %d)", rc);
    free(out);
    snprintf(path, sizeof path, "%s/ev/samples.jsonl", E->work);
    char *s = t2_read_file(path, NULL);
    T2_CHECK(s && strstr(s, "\"adaptation\":{\"adapt\":\"prompt\"") && strstr(s, "\"second_pass_ms\"") && strstr(s, "\"choice\""),
             "samples.jsonl lacks the choices: %.300s", s ? s : "(none)");
    free(s);
    snprintf(path, sizeof path, "%s/ev/results.json", E->work);
    s = t2_read_file(path, NULL);
    T2_CHECK(s && strstr(s, "\"confusion\"") && strstr(s, "\"first_to_second_ratio\"") && strstr(s, "\"adaptation\":\t\"prompt\""),
             "results.json lacks the adaptation: %s", s ? s : "(none)");
    free(s);
    // few-shot: a short search, the result reused by expert:FILE
    snprintf(path, sizeof path, "%s/items.jsonl", E->work);
    rc = t2_test_sh(&out, "'%s' adapt fewshot --model '%s' --examples '%s' --out '%s/few.safetensors' --experts math,code "
                          "--population 6 --generations 3 -n 4 2>&1 && '%s' ask --model '%s' -n 4 --json --adapt 'expert:%s/few.safetensors' 'What is 1+1?' 2>&1",
                    E->t2, model, path, E->work, E->t2, model, E->work);
    printf("%s", out ? out : "");
    T2_CHECK(rc == 0 && out && strstr(out, "fewshot: generation 3/3") && strstr(out, "math=") && strstr(out, "\"mixture\":{\"math\":"),
             "adapt fewshot → ask expert:FILE (rc %d)", rc);
    free(out);
    // refusals before any search: one elite sample, an expert named twice, --out a directory; and a
    // new folder for --out is made
    static const struct { const char *args, *want; } badfs[] = {
        {"--out '%s/x.safetensors' --population 4", "keeps 1 elite sample"},
        {"--out '%s/x.safetensors' --experts math,math", "names 'math' twice"},
        {"--out '%s'", "is a directory"},
    };
    for (int i = 0; i < 3; i++) {
        char args[2048];
        snprintf(args, sizeof args, badfs[i].args, E->work);
        rc = t2_test_sh(&out, "'%s' adapt fewshot --model '%s' --examples '%s' %s --generations 1 -n 2 -q 2>&1", E->t2, model, path, args);
        T2_CHECK(rc != 0 && out && strstr(out, badfs[i].want), "adapt fewshot %s: rc %d %s", args, rc, out);
        free(out);
    }
    rc = t2_test_sh(&out, "'%s' adapt fewshot --model '%s' --examples '%s' --out '%s/new/dir/few.safetensors' --experts math,code "
                          "--population 6 --generations 1 -n 2 -q 2>&1 && test -s '%s/new/dir/few.safetensors'", E->t2, model, path, E->work, E->work);
    T2_CHECK(rc == 0, "adapt fewshot into a new folder: %s", out);
    free(out);
    // eval with fewshot:EXAMPLES runs the search, then every item under the mixture
    rc = t2_test_sh(&out, "'%s' eval --model '%s' --bench jsonl --data '%s' --out '%s/ev2' -n 2 -q --limit 2 --adapt 'fewshot:%s/few.safetensors' 2>&1",
                    E->t2, model, path, E->work, E->work);
    T2_CHECK(rc == 0 && out && strstr(out, "adaptation fewshot:"), "eval fewshot:FILE (rc %d): %s", rc, out);
    free(out);
}

// The server's engine: each request's strategy, the "t2" object, and two slots with different experts
// interleaving token by token still answer as each would alone.
static char *serve_one(t2_srv_engine *en, const char *adapt, t2_srv_job_info *info, int *status) {
    char body[512];
    snprintf(body, sizeof body, "{\"messages\": [{\"role\": \"user\", \"content\": \"What is 2+3?\"}], \"max_tokens\": 6, "
             "\"temperature\": 0, \"t2\": {\"adapt\": \"%s\"}}", adapt);
    t2_srv_parse_opts po = {.has_vision = 1, .max_tokens_default = 6};
    t2_srv_request rq;
    t2_srv_error err;
    *status = 0;
    if (t2_srv_request_parse(body, strlen(body), &po, &rq, &err)) { *status = err.status; return NULL; }
    t2_srv_job *j = t2_srv_job_start(en, &rq, NULL, NULL, &err);
    if (!j) { *status = err.status; printf("serve %s: %d %s\n", adapt, err.status, err.message); return NULL; }
    const char *t;
    size_t n;
    while (!t2_srv_job_step(j, &t, &n)) {}
    t2_srv_job_info_get(j, info);
    char *text = t2_strdup(t2_srv_job_text(j, NULL));
    t2_srv_job_free(j);
    *status = 200;
    return text;
}

static void check_server(const char *model) {
    t2_vlm *m = t2_vlm_load(model, 2, 1);
    t2_srv_engine *en = m ? t2_srv_engine_new(m, 2, 2, 256, NULL) : NULL;
    T2_CHECK(en != NULL, "engine: %s", t2_last_error());
    if (!en) { t2_vlm_free(m); return; }
    // admission: at most slots + queue (here 2 + 2) requests being parsed or answered at once
    t2_srv_error aerr;
    int admitted = 0;
    for (int i = 0; i < 6; i++) admitted += t2_srv_engine_admit(en, &aerr) == 0;
    T2_CHECK(admitted == 4 && aerr.status == 503 && strstr(aerr.message, "4 arriving"), "admitted %d of 6: %s", admitted, aerr.message);
    t2_srv_engine_unadmit(en);
    T2_CHECK(t2_srv_engine_admit(en, &aerr) == 0, "a place given back is taken again: %s", aerr.message);
    for (int i = 0; i < 4; i++) t2_srv_engine_unadmit(en);
    const char *names[8];
    int cls = 0, ne = t2_srv_engine_experts(en, names, 8, &cls);
    T2_CHECK(ne == 4 && cls == 1 && !strcmp(names[1], "math"), "engine experts: %d", ne);
    t2_srv_job_info info;
    int st;
    char *base = serve_one(en, "none", &info, &st);
    char *math = serve_one(en, "expert:math", &info, &st);
    T2_CHECK(st == 200 && !strcmp(info.adapt.strategy, "expert:math") && !strcmp(info.adapt.expert, "math"), "serve expert:math: %d", st);
    char *base2 = serve_one(en, "none", &info, &st);
    T2_CHECK(base && base2 && !strcmp(base, base2), "base after an expert differs: '%s' vs '%s'", base, base2);
    char *mix = serve_one(en, "mix:math=0.5,code=0.5", &info, &st);
    T2_CHECK(st == 200 && info.adapt.n_mix == 2 && !strcmp(info.adapt.mix_names[1], "code"), "serve mix: %d", st);
    cJSON *o = cJSON_CreateObject();
    t2_srv_adapt_json(o, &info.adapt, info.second_pass_ms);
    char *js = cJSON_PrintUnformatted(o);
    printf("server t2 object (mix): %s\n", js);
    T2_CHECK(strstr(js, "\"mixture\":{\"math\":0.5,\"code\":0.5}") != NULL, "t2 object: %s", js);
    free(js);
    cJSON_Delete(o);
    char *pr = serve_one(en, "prompt", &info, &st);
    T2_CHECK(st == 200 && !strcmp(info.adapt.strategy, "prompt") && info.adapt.first_pass_ms > 0, "serve prompt: %d", st);
    printf("server prompt: first pass %.2f ms, second pass %.2f ms\n", info.adapt.first_pass_ms, info.second_pass_ms);
    serve_one(en, "expert:poetry", &info, &st);
    T2_CHECK(st == 400, "unknown expert: %d", st);
    serve_one(en, "fewshot:x.jsonl", &info, &st);
    T2_CHECK(st == 400, "fewshot over the API: %d", st);
    T2_CHECK(math && base && strcmp(math, base), "expert:math answered as the base: '%s'", math ? math : "");
    free(base), free(math), free(base2), free(mix), free(pr);
    t2_srv_engine_free(en);
    t2_vlm_free(m);
}

int main(int argc, char **argv) {
    t2_test_env env = t2_test_init(argc, argv);
    E = &env;
    check_labels();
    check_specs();
    check_cem();
    // the model, its decomposition, random experts, a registry
    char model[1100], edir[1200], path[1300];
    snprintf(model, sizeof model, "%s/base", env.work);
    int rc = t2_test_python(&env, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, env.work);
    rc = rc ? rc : t2_test_python(&env, "vlm_fixtures.py", "images '%s'", env.work);
    T2_CHECK(rc == 0, "vlm_fixtures.py failed");
    if (rc) return t2_test_done();
    char *out = NULL;
    rc = t2_test_sh(&out, "'%s' svf decompose -q --model '%s' 2>&1", env.t2, model);
    T2_CHECK(rc == 0, "decompose: %s", out);
    free(out);
    if (rc) return t2_test_done();
    t2_st *st = t2_st_open(model);
    snprintf(path, sizeof path, "%s/svf-mlp.safetensors", model);
    t2_svf *svf = st ? t2_svf_load(path, st, NULL) : NULL;
    T2_CHECK(svf != NULL, "svf load: %s", t2_last_error());
    if (!svf) return t2_test_done();
    snprintf(edir, sizeof edir, "%s/experts", model);
    t2_mkdirs(edir);
    const char *names[] = {"textvqa", "math", "code", "reasoning", "dispatch"};
    for (int k = 0; k < 5; k++) {
        t2_expert *e = t2_expert_new(svf, T2_SVF_PARAM_OFFICIAL, 100 + (uint64_t)k);
        for (size_t i = 0; i < e->n; i++) e->z[i] += (float)((i * 2654435761u + (unsigned)k * 40503u) % 1000) / 250.0f - 2.0f;
        t2_expert_describe(e, names[k], "{}", NAN);
        snprintf(path, sizeof path, "%s/%s.safetensors", edir, names[k]);
        T2_CHECK(t2_expert_save(e, path) == 0, "save: %s", t2_last_error());
        t2_expert_free(e);
    }
    t2_svf_free(svf);
    t2_st_close(st);
    snprintf(path, sizeof path, "%s/registry.json", edir);
    write_text(path, REGISTRY);
    check_registry(model, edir);
    check_base_explicit(model);
    check_cli(model);
    check_eval_and_fewshot(model);
    check_server(model);
    return t2_test_done();
}
