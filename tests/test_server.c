// test_server.c — `t2 serve`. In process: the strict base64 decoder (RFC 4648 §10 vectors and every
// malformation), the request parser's checks and defaults, local-media path refusal, the adaptation
// choice. Over loopback: a server on a tiny random-weight LLaVA (tests/ref/vlm_fixtures.py chatmodel)
// driven by tests/ref/server_api.py — routes, a non-streamed answer equal to `t2 ask`'s, the same
// answer streamed, sampling settings, every bad-input case, 413, 503 backpressure, client disconnects,
// 32 concurrent clients, SIGTERM drain; then the server must exit 0. Also: a second server on a port in
// use fails with a message.
#include "testutil.h"
#include "core/error.h"
#include "core/util.h"
#include "server/api.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// ---- base64 ----

static void test_base64(void) {
    static const char *vec[][2] = {{"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"},
                                   {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}, {"+/+/", "\xfb\xff\xbf"}};
    char err[128];
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        uint8_t *out;
        size_t n;
        int rc = t2_base64_decode(vec[i][0], strlen(vec[i][0]), &out, &n, err, sizeof err);
        T2_CHECK(rc == 0 && n == strlen(vec[i][1]) && !memcmp(out, vec[i][1], n), "base64 '%s' -> '%s' (%s)", vec[i][0],
                 vec[i][1], rc ? err : "wrong bytes");
        free(out);
    }
    // Every byte value, round trip against a reference encoder.
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[256];
    for (int i = 0; i < 256; i++) raw[i] = (uint8_t)(255 - i);
    for (int len = 0; len <= 256; len += 37) {
        char enc[400];
        size_t k = 0;
        for (int i = 0; i < len; i += 3) {
            uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < len ? (uint32_t)raw[i + 1] << 8 : 0) | (i + 2 < len ? raw[i + 2] : 0);
            enc[k++] = A[w >> 18 & 63];
            enc[k++] = A[w >> 12 & 63];
            enc[k++] = i + 1 < len ? A[w >> 6 & 63] : '=';
            enc[k++] = i + 2 < len ? A[w & 63] : '=';
        }
        uint8_t *out;
        size_t n;
        if (len == 0) {
            T2_CHECK(t2_base64_decode(enc, 0, &out, &n, err, sizeof err) == -1, "empty base64 must be refused");
            continue;
        }
        int rc = t2_base64_decode(enc, k, &out, &n, err, sizeof err);
        T2_CHECK(rc == 0 && n == (size_t)len && !memcmp(out, raw, n), "base64 round trip of %d bytes (%s)", len, err);
        free(out);
    }
    struct { const char *in, *msg; } bad[] = {
        {"Zg=", "multiple of 4"},   {"Zm9", "multiple of 4"},   {"Zm 9", "offset 2"},    {"Zm9v\n", "multiple of 4"},
        {"Zm9\x80", "0x80"},        {"Zg=A", "offset 2"},       {"=Zm9", "offset 0"},    {"Zh==", "non-zero bits"},
        {"Zm9=", "non-zero bits"},  {"Zm-_", "'-'"},             {"Zg==Zg==", "'='"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *out = (uint8_t *)1;
        size_t n;
        err[0] = 0;
        int rc = t2_base64_decode(bad[i].in, strlen(bad[i].in), &out, &n, err, sizeof err);
        T2_CHECK(rc == -1 && out == NULL && strstr(err, bad[i].msg), "base64 '%s' must fail with '%s', got rc %d '%s'",
                 bad[i].in, bad[i].msg, rc, err);
    }
}

// ---- the request parser ----

static int parse(const char *body, const t2_srv_parse_opts *o, t2_srv_request *rq, t2_srv_error *e) {
    return t2_srv_request_parse(body, strlen(body), o, rq, e);
}

static void expect_bad(const char *body, const t2_srv_parse_opts *o, const char *code, const char *msg) {
    t2_srv_request rq;
    t2_srv_error e = {0};
    int rc = parse(body, o, &rq, &e);
    T2_CHECK(rc == -1 && e.status == 400 && e.code && !strcmp(e.code, code) && strstr(e.message, msg),
             "%s: expected 400 %s '%s', got rc %d %d %s '%s'", body, code, msg, rc, e.status, e.code ? e.code : "-", e.message);
    if (rc == 0) t2_srv_request_free(&rq);
}

static void test_parser(const t2_test_env *env) {
    t2_srv_parse_opts o = {1, NULL, 0, 100};
    t2_srv_request rq;
    t2_srv_error e;
    int rc = parse("{\"messages\": [{\"role\": \"developer\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
                   "[{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}]}", &o, &rq, &e);
    T2_CHECK(rc == 0, "a plain request: %s", e.message);
    if (rc == 0) {
        T2_CHECK(rq.n_msgs == 2 && !strcmp(rq.msgs[0].role, "system") && !strcmp(rq.msgs[1].content, "ab"),
                 "messages: %d '%s' '%s'", rq.n_msgs, rq.msgs[0].role, rq.msgs[1].content);
        T2_CHECK(rq.max_tokens == 100 && rq.sp.temperature == 0 && !rq.stream && rq.n_stops == 0 && !strcmp(rq.adapt, "none"),
                 "defaults: max_tokens %d temp %g stream %d stops %d adapt %s", rq.max_tokens, rq.sp.temperature, rq.stream,
                 rq.n_stops, rq.adapt);
        t2_srv_request_free(&rq);
    }
    rc = parse("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"temperature\": 0.7, \"top_p\": 0.5, "
               "\"seed\": 123, \"max_tokens\": 7, \"stop\": \"END\", \"stream\": true, \"t2\": {\"adapt\": \"prompt\"}}",
               &o, &rq, &e);
    T2_CHECK(rc == 0, "settings: %s", e.message);
    if (rc == 0) {
        T2_CHECK(rq.sp.temperature > 0.69f && rq.sp.temperature < 0.71f && rq.sp.top_p == 0.5f && rq.sp.seed == 123 &&
                 rq.max_tokens == 7 && rq.n_stops == 1 && !strcmp(rq.stops[0], "END") && rq.stream &&
                 !strcmp(rq.adapt, "prompt"), "settings not applied");
        t2_srv_request_free(&rq);
    }
    // Without --media-dir a local path is refused; text-only models refuse images.
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"a.png\"}}]}]}",
               &o, "invalid_image_url", "--media-dir");
    t2_srv_parse_opts text_only = {0, NULL, 0, 100};
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,Zg==\"}}]}]}",
               &text_only, "model_not_multimodal", "no vision tower");
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,Zg==\"}}]}]}",
               &o, "invalid_image", "messages[0].content[0].image_url.url");
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"max_tokens\": 1e9}", &o, "invalid_value",
               "max_tokens: 1000000000 is out of range");
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"<ima\"}, {\"type\": \"text\", "
               "\"text\": \"ge>\"}]}]}", &o, "invalid_value", "messages[0].content: the text parts joined contain '<image>'");
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"top_k\": -1}", &o, "invalid_value", "top_k");
    expect_bad("{\"messages\": [{\"role\": \"assistant\", \"content\": null}, 3]}", &o, "invalid_type", "messages[1]");
    expect_bad("{\"messages\": [{\"role\": \"user\", \"content\": null}]}", &o, "invalid_type", "messages[0].content");
    expect_bad("{\"messages\": [{\"role\": \"user\"}]}", &o, "invalid_type", "messages[0].content");
    expect_bad("{\"messages\": 1", &o, "invalid_json", "byte");
    expect_bad("null", &o, "invalid_json", "object");
    // The access log shows a client's URL on one line: control bytes escaped.
    char safe[64];
    t2_srv_printable("/\x1b[31mred\nFAKE LOG\x7f", safe, sizeof safe);
    T2_CHECK(!strcmp(safe, "/\\x1b[31mred\\x0aFAKE LOG\\x7f"), "printable: %s", safe);
    t2_srv_printable("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", safe, sizeof safe);
    T2_CHECK(strlen(safe) < sizeof safe && !strchr(safe, '\n'), "printable, long: %s", safe);
    // The error body is OpenAI's shape.
    t2_srv_fail(&e, 400, "invalid_request_error", "x_code", "bad \"thing\" \xff");
    char *j = t2_srv_error_json(&e);
    T2_CHECK(!strcmp(j, "{\"error\":{\"message\":\"bad \\\"thing\\\" \xef\xbf\xbd\",\"type\":\"invalid_request_error\",\"code\":\"x_code\"}}"),
             "error JSON: %s", j);
    free(j);
    // The adaptation choice.
    t2_srv_adapt a;
    T2_CHECK(t2_srv_adapt_choose("none", &a, &e) == 0 && !strcmp(a.strategy, "none") && !a.expert[0] && a.n_mix == 0,
             "adapt none");
    T2_CHECK(t2_srv_adapt_choose(NULL, &a, &e) == 0, "adapt absent");
    T2_CHECK(t2_srv_adapt_choose("classifier", &a, &e) == -1 && e.status == 400 &&
             !strcmp(e.message, "adaptation strategy 'classifier' is not available: this model has no experts"),
             "adapt classifier: %s", e.message);
    // Local media: traversal refused.
    char dir[4096], err[256];
    snprintf(dir, sizeof dir, "%s/pm", env->work);
    t2_mkdirs(dir);
    t2_test_sh(NULL, "touch '%s/pm/a.png' '%s/outside.png' && mkdir -p '%s/pm/sub' && ln -sf ../outside.png '%s/pm/l.png'",
               env->work, env->work, env->work, env->work);
    char *p = t2_srv_media_path(dir, "a.png", err, sizeof err);
    T2_CHECK(p && strstr(p, "/pm/a.png"), "media a.png: %s", p ? p : err);
    free(p);
    p = t2_srv_media_path(dir, "file://sub/../a.png", err, sizeof err);
    T2_CHECK(!p && strstr(err, ".."), "media sub/../a.png must be refused");
    free(p);
    const char *refused[] = {"../outside.png", "l.png", "/etc/passwd", "sub", "", "nope.png", "file:///etc/hostname"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        p = t2_srv_media_path(dir, refused[i], err, sizeof err);
        T2_CHECK(!p, "media '%s' must be refused, got %s", refused[i], p);
        free(p);
    }
}

// ---- the server over loopback ----

static pid_t start_server(const t2_test_env *e, const char *log, const char *args, int *port) {
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "exec '%s' serve %s 2> '%s'", e->t2, args, log);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    *port = 0;
    for (int i = 0; i < 300 && !*port; i++) {   // up to 30 s
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        size_t n;
        char *txt = t2_file_exists(log) ? t2_read_file(log, &n) : NULL;
        const char *at = txt ? strstr(txt, "listening on http://127.0.0.1:") : NULL;
        if (at) *port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(txt);
        int st;
        if (!*port && waitpid(pid, &st, WNOHANG) == pid) return -1;
    }
    return pid;
}

// Waits up to SECS for PID; its exit status, or -1 (then it is killed).
static int wait_exit(pid_t pid, double secs) {
    for (double t = 0; t < secs; t += 0.05) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_http(const t2_test_env *e) {
    char model[4096], log[4096], media[4096];
    snprintf(model, sizeof model, "%s/model", e->work);
    snprintf(log, sizeof log, "%s/serve.log", e->work);
    snprintf(media, sizeof media, "%s/media", e->work);
    int rc = t2_test_python(e, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, e->work);
    T2_CHECK(rc == 0, "vlm_fixtures.py chatmodel failed (%d)", rc);
    if (rc) return;
    rc = t2_test_sh(NULL, "mkdir -p '%s' && cp '%s/samples/shapes.png' '%s/' && cp '%s/samples/shapes.png' '%s/secret.png' && "
                          "ln -sf ../secret.png '%s/link.png'", media, e->src, media, e->src, e->work, media);
    T2_CHECK(rc == 0, "cannot set up %s", media);
    char args[16384];
    snprintf(args, sizeof args, "--model '%s' --port 0 --slots 2 --queue 2 --max-body 1 --media-dir '%s' --samples '%s/samples' "
                                "--threads 2 --quiet", model, media, e->src);
    setenv("T2_SERVE_TEST_DELAY_MS", "10", 1);
    int port;
    double t0 = t2_now();
    pid_t pid = start_server(e, log, args, &port);
    unsetenv("T2_SERVE_TEST_DELAY_MS");
    T2_CHECK(pid > 0 && port > 0, "t2 serve did not start (see %s)", log);
    if (pid <= 0 || port <= 0) return;
    printf("server on port %d (started in %.2f s)\n", port, t2_now() - t0);

    // A second server on the same port fails with a message.
    char log2[4096], args2[8192];
    snprintf(log2, sizeof log2, "%s/serve2.log", e->work);
    snprintf(args2, sizeof args2, "--model '%s' --port %d --quiet", model, port);
    int port2;
    pid_t pid2 = start_server(e, log2, args2, &port2);
    char *out2 = t2_read_file(log2, NULL);
    T2_CHECK(pid2 == -1 && out2 && strstr(out2, "cannot listen"), "a second server on port %d: %s", port, out2 ? out2 : "");
    free(out2);
    if (pid2 > 0) { kill(pid2, SIGKILL); waitpid(pid2, NULL, 0); }

    char *out = NULL;
    rc = t2_test_sh(&out, "'%s' '%s/tests/ref/server_api.py' %d '%s' '%s' '%s' '%s' %d 2>&1", e->python, e->src, port,
                    e->work, e->src, e->t2, model, (int)pid);
    // Each check of the client is one check here.
    int n_ok = 0;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (!strncmp(line, "ok ", 3)) n_ok++;
        else if (!strncmp(line, "FAIL ", 5)) T2_CHECK(0, "server_api.py: %s", line + 5);
        else if (*line) printf("  %s\n", line);
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    T2_CHECK(rc == 0 && n_ok > 50, "server_api.py exit %d, %d checks passed", rc, n_ok);
    printf("server_api.py: %d checks passed\n", n_ok);
    // server_api.py ends by sending SIGTERM: the server drains and exits 0.
    int st = wait_exit(pid, 20);
    char *txt = t2_read_file(log, NULL);
    T2_CHECK(st == 0 && txt && strstr(txt, "draining") && strstr(txt, "stopped"), "server exit %d, log:\n%s", st, txt ? txt : "");
    free(txt);
}

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    test_base64();
    test_parser(&e);
    test_http(&e);
    return t2_test_done();
}
