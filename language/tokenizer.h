// tokenizer.h — Hugging Face tokenizers, read from tokenizer.json (or vocab.json + merges.txt):
// byte-level BPE (GPT-2 / Llama-3 / Qwen2 style, pre-split by the checkpoint's regex via PCRE2) and
// SentencePiece-style BPE with byte fallback (Llama-2 / Vicuna). Added/special tokens are matched
// before BPE. BOS/EOS come from tokenizer_config.json / generation_config.json / config.json.
#ifndef T2_TOKENIZER_H
#define T2_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

typedef struct t2_tokenizer t2_tokenizer;

// Contract: load the tokenizer of checkpoint directory DIR; NULL + error naming the file at fault.
t2_tokenizer *t2_tok_load(const char *dir);
void t2_tok_free(t2_tokenizer *t);

// Contract: encode UTF-8 TEXT into at most CAP ids in OUT; returns the count (which may exceed CAP:
// then only CAP were written) or -1 + error. ADD_SPECIAL adds what the checkpoint's post-processor
// adds (BOS for Llama models); PARSE_SPECIAL matches added tokens' text ("<|im_start|>") as tokens.
int t2_tok_encode(const t2_tokenizer *t, const char *text, int add_special, int parse_special,
                  int32_t *out, int cap);
// Contract: decode IDS into OUT (NUL-terminated, truncated to CAP-1 bytes); returns the full length
// needed. SKIP_SPECIAL drops special tokens. Byte-fallback pieces and byte-level bytes are joined,
// so a multi-byte character split over tokens decodes whole.
int t2_tok_decode(const t2_tokenizer *t, const int32_t *ids, int n, int skip_special, char *out, size_t cap);

int t2_tok_vocab_size(const t2_tokenizer *t);       // highest id + 1, added tokens included
int t2_tok_bos(const t2_tokenizer *t);              // -1 if none
int t2_tok_is_eos(const t2_tokenizer *t, int id);   // any of the checkpoint's EOS ids
int t2_tok_eos(const t2_tokenizer *t);              // the first EOS id, -1 if none
int t2_tok_is_special(const t2_tokenizer *t, int id);
// Contract: the id of a vocabulary or added token spelled exactly TEXT, or -1.
int t2_tok_id(const t2_tokenizer *t, const char *text);
// Contract: the stored string of token ID (as in the vocabulary; NULL if out of range).
const char *t2_tok_piece(const t2_tokenizer *t, int id);
// Contract: the checkpoint's chat_template string (tokenizer_config.json), or NULL.
const char *t2_tok_chat_template(const t2_tokenizer *t);
// Contract: the text of the BOS / EOS token ("<s>", "<|begin_of_text|>") or "" if none.
const char *t2_tok_bos_text(const t2_tokenizer *t);
const char *t2_tok_eos_text(const t2_tokenizer *t);

// Exposed for tests: split TEXT with the checkpoint's pre-tokenizer; calls fn(piece, len) per piece
// in order. -1 + error on failure.
int t2_tok_pretokenize(const t2_tokenizer *t, const char *text,
                       void (*fn)(void *ctx, const char *piece, size_t len), void *ctx);

#endif
