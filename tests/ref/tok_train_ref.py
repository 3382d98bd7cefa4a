#!/usr/bin/env python3
"""tok_train_ref.py — the independent reference for tests/test_tokenizer_train.c.

  gen WORK                                    write WORK/corpus.txt (one document a line, world-style
                                              questions/answers with repetition, some Unicode),
                                              WORK/corpus.jsonl (the same as eval JSONL) and
                                              WORK/cases.json (strings for tok_ref.py)
  train CORPUS VOCAB NSPECIALS MINFREQ OUT    greedy byte-level BPE on CORPUS's lines → OUT (JSON list
                                              of [left, right] merges, mapped strings)

The trainer is the plain O(words × merges) loop: recount every pair each step, take
min(pairs, key=(-count, pair)) — highest count, then the smallest (left, right) by code points (=
by UTF-8 bytes) — and rewrite every word left to right. It stops when 256 + distinct merged strings
reaches VOCAB - NSPECIALS, when no pair is left, or when the best count is below MINFREQ. A merge
whose string already exists reuses it; a pair merged a second time is listed once.
"""
import json, os, random, sys
from collections import Counter
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tok_fixtures import RE_GPT2, bytes_to_unicode  # noqa: E402  (the GPT-2 regex and byte map)

B2U = bytes_to_unicode()


def train(docs, vocab_size, n_specials, min_freq):
    words = Counter()
    for d in docs:
        for p in regex.findall(RE_GPT2, d):
            words[tuple(B2U[b] for b in p.encode("utf-8"))] += 1
    seqs = {w: list(w) for w in words}
    vocab = set(B2U.values())
    merges, listed = [], set()
    while len(vocab) < vocab_size - n_specials:
        pairs = Counter()
        for w, f in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_freq:
            break
        if best not in listed:
            merges.append(best)
            listed.add(best)
        vocab.add(best[0] + best[1])
        for w in words:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def read_docs(path):
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    return [l[:-1] if l.endswith("\r") else l for l in lines if l not in ("", "\r")]


SHAPES = ["circle", "square", "triangle", "star", "hexagon", "heart"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
PLACES = ["left", "right", "top", "bottom", "center"]


def gen(work):
    rng = random.Random(7)
    docs, rows = [], []
    for i in range(320):
        s, c, p, n = rng.choice(SHAPES), rng.choice(COLORS), rng.choice(PLACES), rng.randint(0, 12)
        kind = i % 4
        if kind == 0:
            q, a = f"What color is the {s}?", c
        elif kind == 1:
            q, a = f"How many {s}s are there?", str(n)
        elif kind == 2:
            q, a = f"Where is the {c} {s}?", f"at the {p}"
        else:
            q, a = f"Is there a {c} {s} in the image?", rng.choice(["yes", "no"])
        docs += [q, f"The {s} is {c}. It's on the {p}; there are {n} of them."]
        rows.append({"question": q, "answers": [a] * 3 + [rng.choice(COLORS)], "answer": a,
                     "choices": [rng.choice(COLORS) for _ in range(3)]})
    docs += ["hello world, hello again — hello!"] * 40
    docs += ["Café naïve façade résumé 你好世界 👋🏽 🦙🦙", "  indented   text\twith\ttabs  ", "aaaaaaaa bbbb aaaa abab"] * 6
    with open(os.path.join(work, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(docs) + "\n")
    with open(os.path.join(work, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.write("\n")   # a blank line is skipped
    cases = ["", "hello", " hello", "hello world", "What color is the circle?", "How many hexagons are there?",
             "The star is purple.", "unseen zyxwv words: quokka, fjord", "Café 你好 👋🏽 🦙", "ünïcödé ΩΩ ß",
             "<image>\nWhat color is the heart?", "<s>hello</s><pad>", "12345 67", "  two  spaces  ",
             "line1\nline2\r\n", "\t tab", "It's they'll we've", "aaaaaaaaaaaa", "émoji 😀😀 mixed"]
    with open(os.path.join(work, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    print(f"tok_train_ref: {len(docs)} documents, {len(rows)} JSONL rows, {len(cases)} cases")


def main():
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "train":
        corpus, vocab, nspec, minf, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        merges = train(read_docs(corpus), vocab, nspec, minf)
        with open(out, "w", encoding="utf-8") as f:
            json.dump([list(m) for m in merges], f, ensure_ascii=False)
        print(f"tok_train_ref: {len(merges)} merges")
    else:
        sys.exit("usage: tok_train_ref.py gen WORK | train CORPUS VOCAB NSPECIALS MINFREQ OUT")


if __name__ == "__main__":
    main()
