// serve.c — `t2 serve`: load a checkpoint and answer the OpenAI chat-completions API and the demo
// page (server/) until SIGINT / SIGTERM, then drain: refuse new requests, let running answers end,
// exit 0. Flags only; the server lives in server/.
#include "cli/cli.h"
#include "core/error.h"
#include "server/server.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: t2 serve --model DIR [--host 127.0.0.1] [--port 8080] [--slots N] [options]\n"
"\n"
"Serve a checkpoint over HTTP: the demo page at http://HOST:PORT/ and an OpenAI-compatible API\n"
"(POST /v1/chat/completions with text and image_url parts, stream: true for server-sent events;\n"
"GET /v1/models; GET /health). See docs/server.md.\n"
"\n"
"  -m, --model DIR          checkpoint directory (required)\n"
"      --host ADDR          address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)\n"
"  -p, --port N             port (default 8080; 0 = any free port, printed at start)\n"
"      --slots N            requests answered at once, each with its own KV cache (default 1)\n"
"      --queue N            requests that may wait for a slot; more get 503 (default 4 x slots)\n"
"  -c, --ctx N              context per slot (default: min(max_position_embeddings, 4096))\n"
"      --template NAME      chat template (default: recognised from the checkpoint)\n"
"  -n, --max-tokens N       default max_tokens of a request (default 256)\n"
"      --max-body MB        request-body limit in MB (default 20); larger bodies get 413\n"
"      --media-dir DIR      allow image_url to name local files under DIR (default: data: URIs only)\n"
"      --www DIR            serve the page from DIR instead of the built-in copy (for editing it)\n"
"      --samples DIR        images the page offers (default: samples/ near the program)\n"
"      --name NAME          model id in /v1/models and responses (default: the directory's name)\n"
"      --drain S            seconds running answers may take to finish on SIGINT/SIGTERM (default 10)\n"
"  -t, --threads N          threads (default: all cores)\n"
"  -q, --quiet              no access log on stderr\n"
"  -h, --help               this help\n");
}

int t2_cmd_serve(int argc, char **argv) {
    const char *cmd = "serve", *model_dir = NULL;
    t2_server_opts o = {0};
    o.host = "127.0.0.1";
    o.port = 8080;
    o.slots = 1;
    o.queue = -1;
    int threads = 0;
    double drain = 10;
    enum { O_HOST = 256, O_SLOTS, O_QUEUE, O_TEMPLATE, O_MAX_BODY, O_MEDIA, O_WWW, O_SAMPLES, O_NAME, O_DRAIN };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, 'p'}, {"slots", required_argument, 0, O_SLOTS},
        {"queue", required_argument, 0, O_QUEUE}, {"ctx", required_argument, 0, 'c'},
        {"template", required_argument, 0, O_TEMPLATE}, {"max-tokens", required_argument, 0, 'n'},
        {"max-body", required_argument, 0, O_MAX_BODY}, {"media-dir", required_argument, 0, O_MEDIA},
        {"www", required_argument, 0, O_WWW}, {"samples", required_argument, 0, O_SAMPLES},
        {"name", required_argument, 0, O_NAME}, {"drain", required_argument, 0, O_DRAIN},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:c:n:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case O_HOST: o.host = optarg; break;
        case 'p': o.port = t2_cli_int(cmd, "--port", optarg, 0, 65535); break;
        case O_SLOTS: o.slots = t2_cli_int(cmd, "--slots", optarg, 1, 256); break;
        case O_QUEUE: o.queue = t2_cli_int(cmd, "--queue", optarg, 0, 4096); break;
        case 'c': o.n_ctx = t2_cli_int(cmd, "--ctx", optarg, 1, 1 << 24); break;
        case O_TEMPLATE: o.tmpl = optarg; break;
        case 'n': o.max_tokens = t2_cli_int(cmd, "--max-tokens", optarg, 1, 1 << 20); break;
        case O_MAX_BODY: o.max_body = (size_t)(t2_cli_float(cmd, "--max-body", optarg, 0.001, 4096) * 1024 * 1024); break;
        case O_MEDIA: o.media_dir = optarg; break;
        case O_WWW: o.www_dir = optarg; break;
        case O_SAMPLES: o.samples_dir = optarg; break;
        case O_NAME: o.model_name = optarg; break;
        case O_DRAIN: drain = t2_cli_float(cmd, "--drain", optarg, 0, 86400); break;
        case 't': threads = t2_cli_int(cmd, "--threads", optarg, 1, 1024); break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) t2_cli_die(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_dir) { usage(stderr); t2_cli_die(cmd, "--model DIR is required"); }

    // Signals: SIGINT / SIGTERM are blocked in every thread (the server's inherit this mask) and
    // taken here with sigwait; a peer that closes its socket must not kill the process (SIGPIPE).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    t2_vlm *m = t2_cli_load(cmd, model_dir, threads, 1);
    t2_server *s = t2_server_start(m, &o);
    if (!s) t2_cli_die(cmd, "%s", t2_last_error());
    const char *h = o.host;
    int v6 = strchr(h, ':') != NULL;
    fprintf(stderr, "t2 serve: %s (%s%s) with %d slot(s), %d threads\n", model_dir, t2_vlm_kind(m),
            t2_vlm_has_vision(m) ? ", vision" : ", text only", o.slots, t2_vlm_threads(m));
    fprintf(stderr, "t2 serve: listening on http://%s%s%s:%d/\n", v6 ? "[" : "", h, v6 ? "]" : "", t2_server_port(s));
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "t2 serve: %s: draining (up to %g s for running answers)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", drain);
    t2_server_stop(s, drain);
    t2_vlm_free(m);
    fprintf(stderr, "t2 serve: stopped\n");
    return 0;
}
