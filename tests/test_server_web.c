// test_server_web.c — the demo page end to end in Debian's headless Chromium: `t2 serve` on a tiny
// random-weight LLaVA, tests/ref/server_web.py drives chromium through chromedriver (W3C WebDriver
// over HTTP): load the page at phone width, pick a sample, upload an image, ask, watch the streamed
// answer and the "How it was answered" section, mixture bars, an error; screenshots land in this
// test's work directory (page.png, page-mixture.png). Skipped (exit 77, ctest SKIP_RETURN_CODE) when
// chromium or chromedriver is not installed.
#include "testutil.h"
#include "core/util.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SKIP 77

int main(int argc, char **argv) {
    t2_test_env e = t2_test_init(argc, argv);
    const char *chromium = getenv("T2_CHROMIUM") ? getenv("T2_CHROMIUM") : "/usr/bin/chromium";
    const char *driver = getenv("T2_CHROMEDRIVER") ? getenv("T2_CHROMEDRIVER") : "/usr/bin/chromedriver";
    if (access(chromium, X_OK) || access(driver, X_OK)) {
        printf("SKIP: %s or %s is not installed (apt-get install chromium chromium-driver)\n", chromium, driver);
        return SKIP;
    }
    signal(SIGPIPE, SIG_IGN);
    char model[4096], log[4096], png[4096];
    snprintf(model, sizeof model, "%s/model", e.work);
    snprintf(log, sizeof log, "%s/serve.log", e.work);
    snprintf(png, sizeof png, "%s/samples/shapes.png", e.src);
    int rc = t2_test_python(&e, "vlm_fixtures.py", "chatmodel '%s' '%s'", model, e.work);
    T2_CHECK(rc == 0, "vlm_fixtures.py chatmodel failed (%d)", rc);
    if (rc) return t2_test_done();

    pid_t pid = fork();
    if (pid == 0) {
        char cmd[16384];
        snprintf(cmd, sizeof cmd, "exec '%s' serve --model '%s' --port 0 --samples '%s/samples' --threads 2 2> '%s'", e.t2,
                 model, e.src, log);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 300 && !port; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        char *txt = t2_file_exists(log) ? t2_read_file(log, NULL) : NULL;
        const char *at = txt ? strstr(txt, "listening on http://127.0.0.1:") : NULL;
        if (at) port = atoi(at + strlen("listening on http://127.0.0.1:"));
        free(txt);
    }
    T2_CHECK(port > 0, "t2 serve did not start (see %s)", log);
    if (port > 0) {
        char *out = NULL;
        rc = t2_test_sh(&out, "'%s' '%s/tests/ref/server_web.py' %d '%s' '%s' '%s' '%s' 2>&1", e.python, e.src, port, png,
                        e.work, chromium, driver);
        for (char *line = out; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            if (!strncmp(line, "FAIL ", 5)) T2_CHECK(0, "server_web.py: %s", line + 5);
            else if (*line) printf("  %s\n", line);
            line = nl ? nl + 1 : NULL;
        }
        free(out);
        T2_CHECK(rc == 0, "server_web.py exit %d", rc);
        char shot[4096];
        snprintf(shot, sizeof shot, "%s/page.png", e.work);
        T2_CHECK(t2_file_exists(shot), "no screenshot at %s", shot);
        printf("screenshot: %s\n", shot);
    }
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    T2_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "t2 serve exit status %d", st);
    return t2_test_done();
}
