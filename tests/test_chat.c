// test_chat.c — language/chat.c against the real chat templates: tests/ref/chat_ref.py renders each
// saved Hugging Face template (tests/ref/templates/*.jinja) with jinja2 on a set of conversations,
// and every C rendering must match byte for byte (or fail where the template raises). Also checks
// template detection on each real template, names, stop texts and the error paths.
#include "testutil.h"
#include "core/error.h"
#include "core/util.h"
#include "language/chat.h"
#include <stdlib.h>
#include <string.h>

// Print a string with escapes so that a mismatch in whitespace is visible.
static void show(const char *label, const char *s) {
    printf("  %s: \"", label);
    for (; s && *s; s++) {
        if (*s == '\n') printf("\\n");
        else if (*s == '\t') printf("\\t");
        else putchar(*s);
    }
    printf("\"\n");
}

static void test_reference_cases(const t2_test_env *e) {
    int rc = t2_test_python(e, "chat_ref.py", "'%s/tests/ref/templates' '%s'", e->src, e->work);
    T2_CHECK(rc == 0, "chat_ref.py failed (exit %d)", rc);
    if (rc != 0) return;
    char path[4096];
    t2_path_join(path, sizeof path, e->work, "chat_cases.json");
    cJSON *doc = t2_json_load(path);
    T2_CHECK(doc != NULL, "cannot load %s: %s", path, t2_last_error());
    if (!doc) return;

    const cJSON *cases = cJSON_GetObjectItem(doc, "cases"), *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *tmpl = t2_json_str(c, "template", "?"), *name = t2_json_str(c, "case", "?");
        int kind = t2_chat_parse_name(t2_json_str(c, "kind", ""));
        T2_CHECK(kind >= 0, "%s/%s: unknown kind", tmpl, name);
        if (kind < 0) continue;
        const cJSON *msgs = cJSON_GetObjectItem(c, "messages"), *m;
        int n = cJSON_GetArraySize(msgs), i = 0;
        t2_chat_msg *cm = t2_calloc((size_t)n, sizeof *cm);
        cJSON_ArrayForEach(m, msgs) {
            cm[i].role = cJSON_GetArrayItem(m, 0)->valuestring;
            cm[i].content = cJSON_GetArrayItem(m, 1)->valuestring;
            i++;
        }
        char *got = t2_chat_render((t2_chat_kind)kind, cm, n, t2_json_str(c, "bos", ""));
        if (t2_json_bool(c, "error", 0)) {
            T2_CHECK(got == NULL, "%s/%s: the template raises but t2 rendered", tmpl, name);
            if (got == NULL) printf("ok   %s/%s: error as the template (%s)\n", tmpl, name, t2_last_error());
        } else {
            const char *want = t2_json_str(c, "expected", "");
            int same = got && strcmp(got, want) == 0;
            T2_CHECK(same, "%s/%s (%s): rendering differs from the template", tmpl, name, t2_chat_name(kind));
            if (!same) { show("want", want); show("got ", got ? got : t2_last_error()); }
            else printf("ok   %s/%s\n", tmpl, name);
        }
        free(got);
        free(cm);
        n_cases++;
    }
    T2_CHECK(n_cases >= 30, "only %d reference cases", n_cases);

    const cJSON *det = cJSON_GetObjectItem(doc, "detect"), *d;
    int n_det = 0;
    cJSON_ArrayForEach(d, det) {
        const char *file = t2_json_str(d, "template", "?");
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tests/ref/templates/%s", e->src, file);
        char *src = t2_read_file(tp, NULL);
        T2_CHECK(src != NULL, "cannot read %s", tp);
        if (!src) continue;
        int want = t2_chat_parse_name(t2_json_str(d, "kind", ""));
        t2_chat_kind got = t2_chat_detect(src, T2_CHAT_NONE);
        T2_CHECK((int)got == want, "detect %s: got %s, want %s", file, t2_chat_name(got), t2_chat_name(want));
        free(src);
        n_det++;
    }
    T2_CHECK(n_det == 7, "expected 7 real templates, found %d", n_det);
    cJSON_Delete(doc);
}

static void test_names_and_detect(void) {
    static const char *names[] = {"none", "vicuna", "llava", "llama2", "llama3", "chatml", "qwen2", "mistral"};
    static const t2_chat_kind kinds[] = {T2_CHAT_NONE, T2_CHAT_VICUNA, T2_CHAT_VICUNA, T2_CHAT_LLAMA2,
                                         T2_CHAT_LLAMA3, T2_CHAT_CHATML, T2_CHAT_CHATML, T2_CHAT_MISTRAL};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        T2_CHECK(t2_chat_parse_name(names[i]) == (int)kinds[i], "parse_name(%s)", names[i]);
    T2_CHECK(t2_chat_parse_name("jinja") == -1, "unknown name must give -1");
    T2_CHECK(t2_chat_parse_name(NULL) == -1, "NULL name must give -1");
    for (int k = 0; k < T2_CHAT_COUNT; k++)
        T2_CHECK(t2_chat_parse_name(t2_chat_name((t2_chat_kind)k)) == k, "name round trip %d", k);

    T2_CHECK(t2_chat_detect(NULL, T2_CHAT_CHATML) == T2_CHAT_CHATML, "NULL template → fallback");
    T2_CHECK(t2_chat_detect("{{ messages[0]['content'] }}", T2_CHAT_LLAMA3) == T2_CHAT_LLAMA3,
             "unrecognised template → fallback");
    T2_CHECK(t2_chat_detect("{{ '[INST] ' + m + ' [/INST]' }}", T2_CHAT_NONE) == T2_CHAT_MISTRAL, "[INST] → mistral");
    T2_CHECK(t2_chat_detect("[INST] <<SYS>>", T2_CHAT_NONE) == T2_CHAT_LLAMA2, "<<SYS>> wins over [INST]");
    T2_CHECK(t2_chat_detect("{{ 'USER: ' }}", T2_CHAT_NONE) == T2_CHAT_VICUNA, "USER: → vicuna");

    T2_CHECK(strcmp(t2_chat_stop_text(T2_CHAT_CHATML), "<|im_end|>") == 0, "chatml stop");
    T2_CHECK(strcmp(t2_chat_stop_text(T2_CHAT_LLAMA3), "<|eot_id|>") == 0, "llama3 stop");
    T2_CHECK(strcmp(t2_chat_stop_text(T2_CHAT_LLAMA2), "</s>") == 0, "llama2 stop");
    T2_CHECK(strcmp(t2_chat_stop_text(T2_CHAT_MISTRAL), "</s>") == 0, "mistral stop");
    T2_CHECK(strcmp(t2_chat_stop_text(T2_CHAT_VICUNA), "</s>") == 0, "vicuna stop");
    T2_CHECK(t2_chat_stop_text(T2_CHAT_NONE) == NULL, "none has no stop text");
}

static void test_errors_and_passthrough(void) {
    t2_chat_msg ok[] = {{"user", "hi"}};
    for (int k = 0; k < T2_CHAT_COUNT; k++) {
        t2_error_clear();
        T2_CHECK(t2_chat_render((t2_chat_kind)k, ok, 0, "") == NULL, "%s: zero messages must fail", t2_chat_name(k));
        T2_CHECK(strstr(t2_last_error(), "empty") != NULL, "%s: message names the problem: %s",
                 t2_chat_name(k), t2_last_error());
        T2_CHECK(t2_chat_render((t2_chat_kind)k, NULL, 1, "") == NULL, "%s: NULL messages must fail", t2_chat_name(k));
        t2_chat_msg bad[] = {{"user", "hi"}, {"tool", "42"}};
        t2_error_clear();
        T2_CHECK(t2_chat_render((t2_chat_kind)k, bad, 2, "") == NULL, "%s: unknown role must fail", t2_chat_name(k));
        T2_CHECK(strstr(t2_last_error(), "tool") != NULL, "%s: error names the role: %s", t2_chat_name(k),
                 t2_last_error());
        t2_chat_msg nocontent[] = {{"user", NULL}};
        T2_CHECK(t2_chat_render((t2_chat_kind)k, nocontent, 1, "") == NULL, "%s: NULL content must fail",
                 t2_chat_name(k));

        // "<image>" anywhere in plain text content is passed through untouched.
        t2_chat_msg img[] = {{"system", "sys"}, {"user", "look <image> here\n<image>\nand here"}};
        char *r = t2_chat_render((t2_chat_kind)k, img, 2, "<s>");
        T2_CHECK(r && strstr(r, "look <image> here\n<image>\nand here"), "%s: <image> text not passed through",
                 t2_chat_name(k));
        free(r);
    }
    T2_CHECK(t2_chat_render(T2_CHAT_COUNT, ok, 1, "") == NULL, "bad kind must fail");
    t2_chat_msg lone_sys[] = {{"system", "only a system"}};
    T2_CHECK(t2_chat_render(T2_CHAT_LLAMA2, lone_sys, 1, "<s>") == NULL, "llama2: system alone must fail");

    // Exact small renderings spelled out by hand (BOS handling per format).
    t2_chat_msg one[] = {{"user", "Q"}};
    struct { t2_chat_kind k; const char *bos, *want; } hand[] = {
        {T2_CHAT_NONE, "<s>", "<s>Q"},
        {T2_CHAT_VICUNA, "<s>", "<s>USER: Q ASSISTANT:"},
        {T2_CHAT_LLAMA2, "<s>", "<s>[INST] Q [/INST]"},
        {T2_CHAT_LLAMA3, "<|begin_of_text|>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ"
                                              "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
        {T2_CHAT_CHATML, "<s>", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                                "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"},
        {T2_CHAT_MISTRAL, "", "[INST] Q [/INST]"},
    };
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++) {
        char *r = t2_chat_render(hand[i].k, one, 1, hand[i].bos);
        T2_CHECK(r && strcmp(r, hand[i].want) == 0, "%s by hand", t2_chat_name(hand[i].k));
        if (!r || strcmp(r, hand[i].want) != 0) { show("want", hand[i].want); show("got ", r); }
        free(r);
    }
    // Many messages (beyond the renderer's small on-stack role table).
    enum { N = 41 };
    t2_chat_msg many[N];
    for (int i = 0; i < N; i++) many[i] = (t2_chat_msg){i % 2 ? "assistant" : "user", i % 2 ? "a" : "u"};
    char *r = t2_chat_render(T2_CHAT_LLAMA2, many, N, "<s>");
    T2_CHECK(r != NULL && strlen(r) == 21 * strlen("<s>[INST] u [/INST]") + 20 * strlen(" a </s>"),
             "llama2 with %d messages", N);
    free(r);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    test_reference_cases(&e);
    test_names_and_detect();
    test_errors_and_passthrough();
    return t2_test_done();
}
