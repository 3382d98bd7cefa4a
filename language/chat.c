// chat.c — chat templates as code: each built-in format renders a conversation the way the real
// Hugging Face chat_template of its family does, byte for byte (tests/test_chat.c holds it against
// jinja2 renderings of the real templates saved in tests/ref/templates). It is not a Jinja
// interpreter: a checkpoint's template is only *recognised* (t2_chat_detect) by its distinctive
// markers and mapped to one of the formats below.
//
// Contents are plain strings; an image placeholder such as "<image>" is part of the text where the
// caller put it and is passed through untouched (the llava-hf processor templates, which take
// content-part lists, produce the same text for a user turn that starts with "<image>\n").
//
// The formats (the template each follows; where a sibling template differs, t2 keeps this one):
//   vicuna  llava-hf/llava-1.5-7b-hf chat_template.json:
//             [SYSTEM " "] "USER: " u " " "ASSISTANT: " a " " ... "ASSISTANT:"
//           No default system prompt and no "</s>" after assistant turns (the HF template has
//           neither). BOS is not in the template; the tokenizer adds it, so BOS_TEXT leads.
//   llama2  meta-llama/Llama-2-7b-chat-hf: BOS "[INST] " [<<SYS>>\n S \n<</SYS>>\n\n] u " [/INST]"
//           " " a " </s>" BOS "[INST] " ...; turn texts are strip()ped; roles must alternate
//           user/assistant after the optional system message.
//   llama3  meta-llama/Meta-Llama-3-8B-Instruct: BOS then per message
//           "<|start_header_id|>" role "<|end_header_id|>\n\n" trim(c) "<|eot_id|>", then the
//           assistant header. llava-hf/llama3-llava-next-8b-hf's processor template writes "\n"
//           before every text part instead of trimming: identical when a user turn starts with
//           "<image>\n", one extra "\n" on text-only turns; t2 follows Meta's template, which
//           LLaVA-NeXT's own conv_llava_llama_3 applies.
//   chatml  Qwen/Qwen2-0.5B-Instruct: "<|im_start|>" role "\n" c "<|im_end|>\n", with the default
//           system "You are a helpful assistant." when the first message is not a system one.
//           llava-hf/llava-onevision-qwen2-*-hf's template is the same without that default.
//           No BOS (Qwen2 has none; BOS_TEXT is ignored).
//   mistral mistralai/Mistral-7B-Instruct-v0.2: BOS "[INST] " u " [/INST]" a "</s>" ...; roles
//           must alternate. That template rejects system messages; t2 folds one into the first
//           user turn as S "\n\n" u (what Mistral's later templates do).
//   none    the contents joined with "\n", BOS_TEXT first, no generation prompt.
// Whitespace stripping (llama2's strip(), llama3's trim) removes what Python's str.isspace()
// calls whitespace, ASCII and the Unicode spaces in UTF-8. The EOS written after llama2/mistral
// assistant turns is "</s>", the EOS of the SentencePiece Llama/Mistral tokenizers.
#include "language/chat.h"
#include "core/error.h"
#include "core/util.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[T2_CHAT_COUNT] = {"none", "vicuna", "llama2", "llama3",
                                                      "chatml", "mistral"};
static const char QWEN_DEFAULT_SYSTEM[] = "You are a helpful assistant.";
static const char SPM_EOS[] = "</s>";

int t2_chat_parse_name(const char *name) {
    static const struct { const char *name; t2_chat_kind kind; } aliases[] = {
        {"none", T2_CHAT_NONE},     {"plain", T2_CHAT_NONE},
        {"vicuna", T2_CHAT_VICUNA}, {"llava", T2_CHAT_VICUNA},   {"llava-1.5", T2_CHAT_VICUNA},
        {"llama2", T2_CHAT_LLAMA2}, {"llama-2", T2_CHAT_LLAMA2},
        {"llama3", T2_CHAT_LLAMA3}, {"llama-3", T2_CHAT_LLAMA3},
        {"chatml", T2_CHAT_CHATML}, {"qwen2", T2_CHAT_CHATML},   {"qwen", T2_CHAT_CHATML},
        {"mistral", T2_CHAT_MISTRAL},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].name) == 0) return (int)aliases[i].kind;
    return -1;
}

const char *t2_chat_name(t2_chat_kind k) {
    return (k >= 0 && k < T2_CHAT_COUNT) ? kind_names[k] : "unknown";
}

t2_chat_kind t2_chat_detect(const char *jinja, t2_chat_kind fallback) {
    if (!jinja) return fallback;
    // Most specific first: a Llama-2 template contains "[INST]" as well as "<<SYS>>".
    if (strstr(jinja, "<|start_header_id|>")) return T2_CHAT_LLAMA3;
    if (strstr(jinja, "<|im_start|>")) return T2_CHAT_CHATML;
    if (strstr(jinja, "<<SYS>>")) return T2_CHAT_LLAMA2;
    if (strstr(jinja, "[INST]")) return T2_CHAT_MISTRAL;
    if (strstr(jinja, "ASSISTANT:") || strstr(jinja, "USER:")) return T2_CHAT_VICUNA;
    return fallback;
}

const char *t2_chat_stop_text(t2_chat_kind k) {
    switch (k) {
    case T2_CHAT_VICUNA: case T2_CHAT_LLAMA2: case T2_CHAT_MISTRAL: return SPM_EOS;
    case T2_CHAT_LLAMA3: return "<|eot_id|>";
    case T2_CHAT_CHATML: return "<|im_end|>";
    default: return NULL;
    }
}

// ---- whitespace as Python's str.isspace() sees it, on UTF-8 ----------------------------------

// Byte length of the whitespace character starting at S (N bytes available), 0 if none.
static size_t ws_at(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
    if (n >= 2 && c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;          // U+0085 U+00A0
    if (n < 3) return 0;
    if (c == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;                       // U+1680
    if (c == 0xe2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8a) ||            // U+2000-200A
                                      s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf)) // U+2028 2029 202F
        return 3;
    if (c == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;                       // U+205F
    if (c == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;                       // U+3000
    return 0;
}

// Byte length of the whitespace character ending at S + N, 0 if none.
static size_t ws_before(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (ws_at(s + n - k, k) == k) return k;
    return 0;
}

// ---- the output buffer: sized once per render, appends never grow it -------------------------

typedef struct { char *p; size_t n, cap; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t len) {
    T2_ASSERT(b->n + len < b->cap);
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

// Strip whitespace at both ends of the text written since FROM.
static void sb_strip_from(sbuf *b, size_t from) {
    unsigned char *s = (unsigned char *)b->p + from;
    size_t len = b->n - from, lead = 0, k;
    while ((k = ws_before(s, len)) > 0) len -= k;
    while (lead < len && (k = ws_at(s + lead, len - lead)) > 0) lead += k;
    memmove(s, s + lead, len - lead);
    b->n = from + len - lead;
}

// ---- rendering ---------------------------------------------------------------------------------

enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static int role_of(const char *role) {
    if (!role) return -1;
    if (strcmp(role, "system") == 0) return ROLE_SYSTEM;
    if (strcmp(role, "user") == 0) return ROLE_USER;
    if (strcmp(role, "assistant") == 0) return ROLE_ASSISTANT;
    return -1;
}

// Llama-2 and Mistral: after an optional leading system message, turns alternate user/assistant
// starting with the user (their templates raise_exception otherwise).
static int check_alternation(t2_chat_kind k, const t2_chat_msg *msgs, const int *roles, int n) {
    int first = (roles[0] == ROLE_SYSTEM) ? 1 : 0;
    if (first == n) return t2_fail("chat %s: a system message needs a user message after it", t2_chat_name(k));
    for (int i = first; i < n; i++) {
        int want = ((i - first) % 2 == 0) ? ROLE_USER : ROLE_ASSISTANT;
        if (roles[i] != want)
            return t2_fail("chat %s: message %d has role \"%s\"; after the optional system message "
                           "roles must alternate user/assistant/user/...", t2_chat_name(k), i, msgs[i].role);
    }
    return 0;
}

static void render_vicuna(sbuf *b, const t2_chat_msg *m, const int *roles, int n) {
    for (int i = 0; i < n; i++) {
        if (roles[i] == ROLE_USER) sb_puts(b, "USER: ");
        else if (roles[i] == ROLE_ASSISTANT) sb_puts(b, "ASSISTANT: ");
        sb_puts(b, m[i].content);
        sb_puts(b, " ");
    }
    sb_puts(b, "ASSISTANT:");
}

static void render_llama2(sbuf *b, const t2_chat_msg *m, const int *roles, int n, const char *bos) {
    int first = (roles[0] == ROLE_SYSTEM) ? 1 : 0;
    for (int i = first; i < n; i++) {
        size_t from;
        if (roles[i] == ROLE_USER) {
            sb_puts(b, bos);
            sb_puts(b, "[INST] ");
            from = b->n;
            if (i == 1 && first) {
                sb_puts(b, "<<SYS>>\n");
                sb_puts(b, m[0].content);
                sb_puts(b, "\n<</SYS>>\n\n");
            }
            sb_puts(b, m[i].content);
            sb_strip_from(b, from);
            sb_puts(b, " [/INST]");
        } else {
            sb_puts(b, " ");
            from = b->n;
            sb_puts(b, m[i].content);
            sb_strip_from(b, from);
            sb_puts(b, " ");
            sb_puts(b, SPM_EOS);
        }
    }
}

static void render_llama3(sbuf *b, const t2_chat_msg *m, int n) {
    for (int i = 0; i < n; i++) {
        sb_puts(b, "<|start_header_id|>");
        sb_puts(b, m[i].role);
        sb_puts(b, "<|end_header_id|>\n\n");
        size_t from = b->n;
        sb_puts(b, m[i].content);
        sb_strip_from(b, from);
        sb_puts(b, "<|eot_id|>");
    }
    sb_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_chatml(sbuf *b, const t2_chat_msg *m, const int *roles, int n) {
    if (roles[0] != ROLE_SYSTEM) {
        sb_puts(b, "<|im_start|>system\n");
        sb_puts(b, QWEN_DEFAULT_SYSTEM);
        sb_puts(b, "<|im_end|>\n");
    }
    for (int i = 0; i < n; i++) {
        sb_puts(b, "<|im_start|>");
        sb_puts(b, m[i].role);
        sb_puts(b, "\n");
        sb_puts(b, m[i].content);
        sb_puts(b, "<|im_end|>\n");
    }
    sb_puts(b, "<|im_start|>assistant\n");
}

static void render_mistral(sbuf *b, const t2_chat_msg *m, const int *roles, int n) {
    int first = (roles[0] == ROLE_SYSTEM) ? 1 : 0;
    for (int i = first; i < n; i++) {
        if (roles[i] == ROLE_USER) {
            sb_puts(b, "[INST] ");
            if (i == 1 && first) {
                sb_puts(b, m[0].content);
                sb_puts(b, "\n\n");
            }
            sb_puts(b, m[i].content);
            sb_puts(b, " [/INST]");
        } else {
            sb_puts(b, m[i].content);
            sb_puts(b, SPM_EOS);
        }
    }
}

char *t2_chat_render(t2_chat_kind k, const t2_chat_msg *msgs, int n, const char *bos_text) {
    if (k < 0 || k >= T2_CHAT_COUNT) return t2_fail_null("chat: unknown template kind %d", (int)k);
    if (!msgs || n <= 0) return t2_fail_null("chat %s: empty conversation (no messages)", t2_chat_name(k));
    if (!bos_text) bos_text = "";
    int small[16];
    int *roles = n <= 16 ? small : t2_malloc((size_t)n * sizeof *roles);
    size_t bos_len = strlen(bos_text), cap = 256 + sizeof QWEN_DEFAULT_SYSTEM;
    for (int i = 0; i < n; i++) {
        roles[i] = role_of(msgs[i].role);
        if (roles[i] < 0 || !msgs[i].content) {
            int bad_role = roles[i] < 0;
            if (roles != small) free(roles);
            if (bad_role)
                return t2_fail_null("chat %s: message %d has unknown role \"%s\" (system|user|assistant)",
                                    t2_chat_name(k), i, msgs[i].role ? msgs[i].role : "(null)");
            return t2_fail_null("chat %s: message %d has no content", t2_chat_name(k), i);
        }
        // Every format adds at most ~40 bytes of markup per message plus one BOS (llama2), and
        // llama2/mistral copy the system text once more into the first user turn.
        cap += strlen(msgs[i].content) * (roles[i] == ROLE_SYSTEM ? 2 : 1) + 64 + bos_len;
    }
    if ((k == T2_CHAT_LLAMA2 || k == T2_CHAT_MISTRAL) && check_alternation(k, msgs, roles, n) < 0) {
        if (roles != small) free(roles);
        return NULL;
    }
    sbuf b = {t2_malloc(cap), 0, cap};
    switch (k) {
    case T2_CHAT_NONE:
        sb_puts(&b, bos_text);
        for (int i = 0; i < n; i++) {
            if (i) sb_puts(&b, "\n");
            sb_puts(&b, msgs[i].content);
        }
        break;
    case T2_CHAT_VICUNA:  sb_puts(&b, bos_text); render_vicuna(&b, msgs, roles, n); break;
    case T2_CHAT_LLAMA2:  render_llama2(&b, msgs, roles, n, bos_text); break;
    case T2_CHAT_LLAMA3:  sb_puts(&b, bos_text); render_llama3(&b, msgs, n); break;
    case T2_CHAT_CHATML:  render_chatml(&b, msgs, roles, n); break;
    case T2_CHAT_MISTRAL: sb_puts(&b, bos_text); render_mistral(&b, msgs, roles, n); break;
    default: break;
    }
    b.p[b.n] = 0;
    if (roles != small) free(roles);
    return b.p;
}
