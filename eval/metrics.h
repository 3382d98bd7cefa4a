// metrics.h — the scores benchmarks are judged by, with the exact semantics of the tools the field
// trusts: the official VQA accuracy (GT-Vision-Lab vqaEval.py: its answer normalisation and the
// 10-choose-9 average), ANLS (DocVQA), exact match, GSM8K's last number, multiple-choice letters.
// See ../shared/reference/formats.md. Pure functions: no I/O, no allocation visible to callers.
#ifndef T2_METRICS_H
#define T2_METRICS_H
#include <stddef.h>

// Contract: vqaEval.py's normalisation of one answer into OUT (cap bytes, truncated, NUL-terminated):
// newline/tab → space and strip, punctuation (the comma-in-number rule, marks next to spaces
// deleted, others → space), "." not followed by a digit removed, lowercase, number words → digits,
// articles dropped, contractions repaired. Returns the length written.
size_t t2_vqa_normalize(const char *in, char *out, size_t cap);
// Contract: VQA accuracy in [0, 1] of PRED against the N human ANSWERS: for each answer left out,
// min(1, matches among the others / 3), averaged. As vqaEval.py's evaluate(): PRED is normalised
// as above; the answers only get the punctuation step, and only when they are not all identical
// (official annotation files are pre-normalised). N = 0 → 0.
double t2_vqa_accuracy(const char *pred, const char *const *answers, int n);
// Contract: ANLS in [0, 1]: max over answers of 1 − NL(pred, answer) (normalised Levenshtein on
// lowercased, whitespace-stripped strings), counted only when ≥ threshold TAU (DocVQA: 0.5).
double t2_anls(const char *pred, const char *const *answers, int n, double tau);
// Contract: 1 if PRED equals any answer after trimming whitespace and lowercasing, else 0.
double t2_exact_match(const char *pred, const char *const *answers, int n);
// Contract: the last number in TEXT (commas in numbers dropped, a trailing "." removed, "-" kept),
// as GSM8K scoring takes it, into OUT; 0 if none (OUT = ""), else its length.
size_t t2_last_number(const char *text, char *out, size_t cap);
// Contract: GSM8K answer: the text after "####" in a reference solution, normalised as a number.
size_t t2_gsm8k_gold(const char *solution, char *out, size_t cap);
// Contract: 1 if the last number of PRED equals GOLD numerically (e.g. "5.0" = "5"), else 0.
double t2_gsm8k_score(const char *pred, const char *gold);
// Contract: the choice a model's answer names among N_CHOICES letters A.. : "B", "(B)", "B.",
// "The answer is B", or the text of a choice; -1 if none can be found.
int t2_mc_extract(const char *pred, const char *const *choices, int n_choices);

#endif
