// chat.h — chat templates. Jinja is not interpreted: the checkpoint's chat_template is recognised as
// one of the built-in named formats (vicuna/llava-1.5, llama-2, llama-3, chatml, mistral), which a
// flag can override. The output is the prompt text, special tokens spelled out, for an encode with
// parse_special on and add_special off (as HF's apply_chat_template + tokenizer do).
#ifndef T2_CHAT_H
#define T2_CHAT_H
#include <stddef.h>

typedef enum {
    T2_CHAT_NONE,      // plain text, no template
    T2_CHAT_VICUNA,    // "SYSTEM USER: ... ASSISTANT:" (Vicuna v1.1, llava-1.5)
    T2_CHAT_LLAMA2,    // "<s>[INST] <<SYS>>...<</SYS>> ... [/INST]"
    T2_CHAT_LLAMA3,    // "<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>"
    T2_CHAT_CHATML,    // "<|im_start|>role\n...<|im_end|>\n" (Qwen2)
    T2_CHAT_MISTRAL,   // "<s>[INST] ... [/INST]"
    T2_CHAT_COUNT
} t2_chat_kind;

typedef struct { const char *role; const char *content; } t2_chat_msg;   // role: system|user|assistant

// Contract: the kind named NAME ("vicuna", "llava", "llama2", "llama3", "chatml", "qwen2", "mistral",
// "none"); -1 if unknown.
int t2_chat_parse_name(const char *name);
const char *t2_chat_name(t2_chat_kind k);
// Contract: recognise a Jinja chat_template string (NULL → fallback); FALLBACK when nothing matches.
t2_chat_kind t2_chat_detect(const char *jinja, t2_chat_kind fallback);
// Contract: render MSGS (n of them; an optional leading system message) followed by the assistant's
// turn opening. BOS_TEXT is prepended where the template puts the BOS token ("" for none).
// Returns a malloc'd string, or NULL + error (unknown role, empty conversation).
char *t2_chat_render(t2_chat_kind k, const t2_chat_msg *msgs, int n, const char *bos_text);
// Contract: text that ends the assistant's turn in this template (e.g. "<|im_end|>"), or NULL.
const char *t2_chat_stop_text(t2_chat_kind k);

#endif
