// tokenizer_train.h — learn a byte-level BPE vocabulary (GPT-2 style) from UTF-8 text and write it
// as a standard Hugging Face tokenizer directory (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json) that language/tokenizer.h and HF `tokenizers` both load.
// Not here: SentencePiece/Unigram/WordPiece training, normalizers, other pre-split regexes.
//
// Use: t2_toktrain_new → t2_toktrain_feed per document (words are counted as text streams in; the
// corpus is not kept) → t2_toktrain_run → t2_toktrain_save → t2_toktrain_free.
//
// Merge order (deterministic): each step merges the adjacent pair with the highest count (summed
// over words × word frequency); ties go to the lexicographically smallest (left, right) compared by
// the UTF-8 bytes of the mapped (bytes_to_unicode) strings — left first, a prefix sorts first —
// which is Python's min(pairs, key=lambda p: (-count[p], p)). Training stops when the vocabulary
// (256 byte tokens + distinct merged strings) plus the specials reaches vocab_size, when no pair is
// left, or when the best count falls below min_frequency. A merge whose string already exists (e.g.
// "ab"+"c" after "a"+"bc") reuses that token, as HF's trainer does.
#ifndef T2_TOKENIZER_TRAIN_H
#define T2_TOKENIZER_TRAIN_H
#include <stddef.h>

typedef struct t2_toktrain t2_toktrain;

typedef struct {
    int vocab_size;                 // target total: 256 bytes + merged tokens + specials
    int min_frequency;              // smallest pair count still merged (default 2)
    const char *const *specials;    // added tokens, ids n_bpe, n_bpe+1, ... (special: true)
    int n_specials;
    const char *bos, *eos, *pad, *unk;  // each NULL or one of SPECIALS (tokenizer_config.json)
    int add_bos;                    // post-processor prepends BOS (TemplateProcessing)
    const char *chat_template;      // Jinja text for tokenizer_config.json, or NULL
    int model_max_length;           // tokenizer_config.json (0: 2048)
    // progress: called every few merges and at the end (done merges, the budget of new tokens)
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
} t2_toktrain_params;

// Contract: defaults (vocab_size 0 = must be set, min_frequency 2, add_bos 1, no specials).
t2_toktrain_params t2_toktrain_defaults(void);

t2_toktrain *t2_toktrain_new(void);
void t2_toktrain_free(t2_toktrain *t);
// Contract: pre-split TEXT(len) with the GPT-2 regex and count its words; invalid UTF-8 bytes are
// read as U+FFFD. -1 + error if called after t2_toktrain_run (or if PCRE2 fails to match).
int t2_toktrain_feed(t2_toktrain *t, const char *text, size_t len);
// Contract: learn the merges; -1 + error for a vocab_size below 256 + specials, an empty corpus, or
// duplicate/empty specials. Returns 0 also when fewer merges than asked were possible.
int t2_toktrain_run(t2_toktrain *t, const t2_toktrain_params *p);
// Contract: write DIR/{tokenizer.json, tokenizer_config.json, special_tokens_map.json} atomically
// (DIR created); -1 + error naming the file.
int t2_toktrain_save(const t2_toktrain *t, const t2_toktrain_params *p, const char *dir);

// After run: words counted (distinct, total), merges learned, and merge I as its mapped strings.
size_t t2_toktrain_n_words(const t2_toktrain *t, size_t *total);
int t2_toktrain_n_merges(const t2_toktrain *t);
void t2_toktrain_merge(const t2_toktrain *t, int i, const char **left, const char **right);
int t2_toktrain_n_tokens(const t2_toktrain *t);    // byte-level BPE vocabulary size (no specials)

// Contract: the Jinja chat_template of llava-hf/llava-1.5-7b-hf (vicuna style; language/chat.h's
// t2_chat_detect recognises it as vicuna).
const char *t2_toktrain_vicuna_template(void);

#endif
