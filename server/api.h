// api.h — the OpenAI chat-completions request as t2 reads it: JSON → a checked request (messages
// rendered to "<image>" markers, images decoded, sampling settings), strict base64 and data: URIs,
// local media under an allowed directory, and errors in OpenAI's shape. No HTTP and no model here
// (http.c and engine.c), so every bad-input path is testable without a socket.
#ifndef T2_SERVER_API_H
#define T2_SERVER_API_H
#include <stddef.h>
#include <stdint.h>
#include "experts/dispatch.h"
#include "language/chat.h"
#include "language/generate.h"
#include "language/sampler.h"
#include "vision/image.h"

#define T2_SRV_MAX_MESSAGES 256
#define T2_SRV_MAX_IMAGES 8
#define T2_SRV_MAX_STOPS 4          // OpenAI's limit; the template's stop text is added on top
#define T2_SRV_MAX_PIXELS ((size_t)16 << 20)

// An error as the API returns it: {"error": {"message", "type", "code"}} with an HTTP status.
typedef struct {
    int status;              // 400, 404, 405, 413, 500, 503
    const char *type;        // "invalid_request_error", "not_found_error", "server_error", ...
    const char *code;        // short machine code ("invalid_json", "invalid_image", ...) or NULL
    char message[512];
} t2_srv_error;

// Contract: fill E and return -1 (so `return t2_srv_fail(...)`).
int t2_srv_fail(t2_srv_error *e, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
// Contract: the error body as a malloc'd JSON string.
char *t2_srv_error_json(const t2_srv_error *e);

// What the parser needs to know about the model and the server.
typedef struct {
    int has_vision;            // images are refused otherwise
    const char *media_dir;     // local image paths allowed under it; NULL = none allowed
    size_t max_pixels;         // per image (0 = T2_SRV_MAX_PIXELS)
    int max_tokens_default;    // when the request gives none
} t2_srv_parse_opts;

// A checked request. Strings and images are owned by it.
typedef struct {
    t2_chat_msg msgs[T2_SRV_MAX_MESSAGES];   // content holds one "<image>\n" per image part
    int n_msgs;
    t2_image images[T2_SRV_MAX_IMAGES];      // in prompt order
    int n_images;
    t2_sampler_params sp;
    int max_tokens;
    char *stops[T2_SRV_MAX_STOPS];
    int n_stops;
    int stream;
    int ignore_eos;                          // llama-server's extension: do not stop at EOS
    char adapt[64];                          // the "t2": {"adapt": ...} strategy ("none" when absent)
} t2_srv_request;

// Contract: parse and check the request body BODY(len). On error returns -1 with E naming the field
// ("messages[1].content[0].image_url.url: ...") and RQ left empty (nothing to free).
int t2_srv_request_parse(const char *body, size_t len, const t2_srv_parse_opts *o, t2_srv_request *rq,
                         t2_srv_error *e);
void t2_srv_request_free(t2_srv_request *rq);

// Contract: strict base64 (RFC 4648 §4: standard alphabet, '=' padding to a multiple of 4, no
// whitespace, zero trailing bits). *OUT malloc'd (*OUT_LEN bytes). -1 with a message in ERR(cap)
// naming the offending offset.
int t2_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, char *err, size_t cap);

// Contract: resolve NAME (a relative path, or file:// / file: URL of one) under directory DIR;
// refuses absolute paths outside DIR, "..", and symlinks that leave DIR. Malloc'd real path or NULL
// with a message in ERR(cap).
char *t2_srv_media_path(const char *dir, const char *name, char *err, size_t cap);

// Contract: IN into OUT(cap) for a log line: control bytes as \xNN, cut to fit.
void t2_srv_printable(const char *in, char *out, size_t cap);

// How a request was answered by the adaptation layer (Transformer² two-pass inference).
#define T2_SRV_MAX_MIX 16
typedef struct {
    char strategy[64];        // "none", "prompt", "classifier", "expert:NAME", ...
    char expert[64];          // the single expert chosen, "" for none
    int n_mix;                // a mixture of experts: names and weights (0 = no mixture)
    char mix_names[T2_SRV_MAX_MIX][64];
    float mix_weights[T2_SRV_MAX_MIX];
    double first_pass_ms;     // the dispatch pass
    char note[160];           // why the first pass did not run ("" when it did)
} t2_srv_adapt;

// Contract: THE place where the adaptation strategy is chosen and applied before the answering pass:
// STRATEGY (the --adapt grammar, experts/dispatch.h; "" = none) over D (the model's dispatcher, NULL
// when the model has no experts/registry.json): prompt / classifier run the first pass on QUESTION and
// the request's N encoded IMAGES; expert:NAME / mix: apply registry experts; anything D cannot do → 400.
// OUT is the report, CHOICE (may be NULL) what the engine re-applies before each compute step. A
// forward failure is a 500. Call with the model's compute lock held.
int t2_srv_adapt_choose_with(t2_dispatcher *d, const char *strategy, const char *question, const t2_image_rows *images,
                             int n, t2_srv_adapt *out, t2_adapt_choice *choice, t2_srv_error *e);
// Contract: the same without a model: "none" (or "") → OUT with strategy "none"; anything else → 400
// "adaptation strategy '...' is not available: this model has no experts".
int t2_srv_adapt_choose(const char *strategy, t2_srv_adapt *out, t2_srv_error *e);

// Contract: the "t2" object of a response: {"adapt", "expert", "mixture"?, "first_pass_ms",
// "second_pass_ms"} appended to OBJ (a cJSON object).
struct cJSON;
void t2_srv_adapt_json(struct cJSON *obj, const t2_srv_adapt *a, double second_pass_ms);

#endif
