#!/usr/bin/python3
"""generate_ref.py DIR PROMPT N OUT [--chat TEMPLATE.jinja] — greedy generation, independently of t2.
   generate_ref.py make DIR TOKENIZER_DIR ARCH SEED [PAD] — a random checkpoint sized for that
       tokenizer (PAD more ids past it, as padded vocabularies have)
   generate_ref.py pad-only DIR — zero lm_head except the last two (padding) ids, +r and -r: greedy
       decoding then only ever picks ids the tokenizer cannot decode

The prompt is rendered (optionally through a real Jinja chat template, as HF's apply_chat_template
does), encoded by the reference BPE (tok_ref.py), then N tokens are generated greedily from the
torch f64 reference model (lm_ref.py, full recomputation each step, EOS ignored) and decoded by
tok_ref. Writes OUT.json ({"prompt_ids", "ids"}) and OUT.txt (the decoded bytes, which need not be
valid UTF-8 for a random model: t2 prints bytes as they decode too).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_ref  # noqa: E402
import tok_ref  # noqa: E402


def pad_only(d):
    import st
    path = os.path.join(d, "model.safetensors")
    t = {k: np.asarray(v) for k, v in st.load(path).items()}
    w = np.zeros_like(t["lm_head.weight"], dtype=np.float32)
    r = np.random.default_rng(0).standard_normal(w.shape[1]).astype(np.float32)
    w[-1], w[-2] = r, -r
    t["lm_head.weight"] = w
    st.save(path, {k: ("F32", v.astype(np.float32)) for k, v in t.items()})


def make(d, tok_dir, arch, seed, pad=0):
    import shutil
    import make_lm
    tj = json.load(open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8"))
    n = max(list(tj["model"]["vocab"].values()) + [t["id"] for t in tj["added_tokens"]]) + 1
    make_lm.make(d, arch=arch, seed=seed, vocab=n + pad, max_pos=512)
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(tok_dir, f)):
            shutil.copy(os.path.join(tok_dir, f), d)


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 0)
        return
    if sys.argv[1] == "pad-only":
        pad_only(sys.argv[2])
        return
    d, prompt, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tok = tok_ref.Ref(d)
    if "--chat" in sys.argv:
        import jinja2
        src = open(sys.argv[sys.argv.index("--chat") + 1], encoding="utf-8").read()
        cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(src).render(messages=[{"role": "user", "content": prompt}],
                                           add_generation_prompt=True, bos_token=cfg["bos_token"],
                                           eos_token=cfg["eos_token"])
        ids = tok.encode(text, add_special=False, parse_special=True)
    else:
        ids = tok.encode(prompt, add_special=True, parse_special=True)
    model = lm_ref.Model(d)
    seq = list(ids)
    gen = []
    for _ in range(n):
        lg, _ = model.forward(seq)
        nxt = int(np.argmax(lg[-1].double().numpy()))
        gen.append(nxt)
        seq.append(nxt)
    json.dump({"prompt_ids": ids, "ids": gen}, open(out + ".json", "w", encoding="utf-8"))
    with open(out + ".txt", "wb") as f:
        f.write(tok.decode(gen, skip_special=True, raw=True))


if __name__ == "__main__":
    main()
