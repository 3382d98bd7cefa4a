// server.h — `t2 serve`: an OpenAI-compatible HTTP API (POST /v1/chat/completions, GET /v1/models,
// GET /health) and the demo page at `/`, on libmicrohttpd. The front end is thin (DESIGN.md §12):
// requests are checked in api.c, answered by engine.c's slots, and carried by http.c.
#ifndef T2_SERVER_H
#define T2_SERVER_H
#include <stddef.h>
#include "fusion/vlm.h"

typedef struct {
    const char *host;          // address to bind (default "127.0.0.1": loopback only)
    int port;                  // 0 = any free port (see t2_server_port)
    int slots;                 // sequences answered at once (default 1)
    int queue;                 // requests that may wait for a slot beyond those (default 4 × slots)
    int n_ctx;                 // context per slot (0 = min(max_position_embeddings, 4096))
    const char *tmpl;          // chat template name, NULL = the checkpoint's
    size_t max_body;           // request-body cap in bytes (default 20 MB) → 413
    int max_tokens;            // default max_tokens of a request (default 256)
    const char *media_dir;     // local image paths allowed under it (NULL: none)
    const char *www_dir;       // page files from here instead of the built-in copy (NULL: built in)
    const char *samples_dir;   // images offered on the page (NULL: samples/ found near the program)
    const char *model_name;    // the id in /v1/models and responses (NULL: the model directory's name)
    int quiet;                 // no access log on stderr
} t2_server_opts;

typedef struct t2_server t2_server;

// Contract: start serving model M (not owned; it must outlive the server) in background threads.
// NULL + error (address in use, bad host, no page files, ...).
t2_server *t2_server_start(t2_vlm *m, const t2_server_opts *o);
// Contract: the port actually bound.
int t2_server_port(const t2_server *s);
// Contract: stop: refuse new requests (503), let running answers finish for up to DRAIN_S seconds
// (then cut them short), close every connection, free S.
void t2_server_stop(t2_server *s, double drain_s);

#endif
