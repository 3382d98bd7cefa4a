#!/usr/bin/env python3
"""tok_ref.py WORKDIR FIXTURE... — an independent, plainly written reference for language/tokenizer.c.

Reads each fixture directory (tokenizer.json, or vocab.json + merges.txt + tokenizer_config.json),
encodes every string of WORKDIR/cases.json the way Hugging Face tokenizers does — added tokens
first (longest match, lstrip/rstrip), normaliser, pre-tokenizer with Python's `regex` module, BPE
by repeatedly merging the lowest-ranked adjacent pair (leftmost on ties), post-processor — decodes
the ids back, and writes FIXTURE/expect.json for the C test to compare against:
  {"cases": [{"pre": [pieces], "ids": [...], "ids_sp": [...], "dec": str, "dec_skip": str, "rt": str}]}
  ids: add_special off, parse_special off; ids_sp: both on; dec/dec_skip: decode(ids_sp) keeping /
  skipping special tokens; rt: decode(ids), which gives back the (normalised) input ("exact"), but
  for the Metaspace decoder's first-token quirk.
Only the handful of tokenizer.json features the fixtures use are implemented.
"""
import json, os, sys, unicodedata
import regex

RE_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
RE_QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
WHITE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}


def byte_map():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, extra = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + extra)
            extra += 1
    return m


B2U = byte_map()
U2B = {u: b for b, u in B2U.items()}


class Ref:
    def __init__(self, d):
        self.norm, self.pre, self.byte_level = [], [], False
        self.prefix, self.suffix = [], []
        self.dec = []
        tjp = os.path.join(d, "tokenizer.json")
        cfgp = os.path.join(d, "tokenizer_config.json")
        cfg = json.load(open(cfgp, encoding="utf-8")) if os.path.exists(cfgp) else {}
        added = []
        if os.path.exists(tjp):
            tj = json.load(open(tjp, encoding="utf-8"))
            m = tj["model"]
            assert m["type"] == "BPE"
            self.vocab = dict(m["vocab"])
            merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
            self.ignore_merges = m.get("ignore_merges", False)
            self.byte_fallback = m.get("byte_fallback", False)
            self.fuse_unk = m.get("fuse_unk", False)
            self.unk = m.get("unk_token")
            added = tj["added_tokens"]
            self.walk_norm(tj["normalizer"])
            self.walk_pre(tj["pre_tokenizer"])
            self.walk_dec(tj["decoder"])
            self.walk_post(tj["post_processor"])
        else:
            self.vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
            lines = open(os.path.join(d, "merges.txt"), encoding="utf-8").read().split("\n")
            merges = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
            self.ignore_merges = self.byte_fallback = self.fuse_unk = False
            self.unk = None
            for k, v in cfg.get("added_tokens_decoder", {}).items():
                added.append(dict(v, id=int(k)))
            qwen = "Qwen2" in cfg.get("tokenizer_class", "")
            if qwen:
                self.norm.append(("nfc",))
            self.pre.append(("split", regex.compile(RE_QWEN2 if qwen else RE_GPT2), "Isolated"))
            self.byte_level = True
            self.dec = [("bytelevel",)]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = added
        self.id2tok = {i: s for s, i in self.vocab.items()}
        for a in added:
            self.id2tok[a["id"]] = a["content"]
        self.special = {a["id"] for a in added if a.get("special")}
        if not self.prefix and not self.suffix and cfg.get("add_bos_token"):
            bos = cfg.get("bos_token")
            bos = bos["content"] if isinstance(bos, dict) else bos
            self.prefix = [self.token_id(bos)]

    def token_id(self, s):
        for a in self.added:
            if a["content"] == s:
                return a["id"]
        return self.vocab[s]

    def walk_norm(self, n):
        if not n:
            return
        if n["type"] == "Sequence":
            for x in n["normalizers"]:
                self.walk_norm(x)
        elif n["type"] == "NFC":
            self.norm.append(("nfc",))
        elif n["type"] == "Prepend":
            self.norm.append(("prepend", n["prepend"]))
        elif n["type"] == "Replace":
            self.norm.append(("replace", n["pattern"]["String"], n["content"]))
        else:
            raise ValueError(n["type"])

    def walk_pre(self, p):
        if not p:
            return
        t = p["type"]
        if t == "Sequence":
            for x in p["pretokenizers"]:
                self.walk_pre(x)
        elif t == "Split":
            self.pre.append(("split", regex.compile(p["pattern"]["Regex"]), p["behavior"]))
        elif t == "ByteLevel":
            self.byte_level = True
            if p.get("add_prefix_space"):
                self.pre.append(("prefix", " ", False))
            if p.get("use_regex", True):
                self.pre.append(("split", regex.compile(RE_GPT2), "Isolated"))
        elif t == "Metaspace":
            r = p["replacement"]
            self.pre.append(("replace", " ", r))
            if p["prepend_scheme"] != "never":
                self.pre.append(("prefix", r, p["prepend_scheme"] == "first"))
            if p.get("split", True):
                self.pre.append(("split", regex.compile(regex.escape(r)), "MergedWithNext"))
        else:
            raise ValueError(t)

    def walk_dec(self, d):
        if not d:
            return
        if d["type"] == "Sequence":
            for x in d["decoders"]:
                self.walk_dec(x)
        elif d["type"] == "ByteLevel":
            self.dec.append(("bytelevel",))
        elif d["type"] == "Replace":
            self.dec.append(("replace", d["pattern"]["String"], d["content"]))
        elif d["type"] == "ByteFallback":
            self.dec.append(("bytefallback",))
        elif d["type"] == "Fuse":
            self.dec.append(("fuse",))
        elif d["type"] == "Strip":
            self.dec.append(("strip", d["start"]))
        elif d["type"] == "Metaspace":
            self.dec.append(("metaspace", d["replacement"], d["prepend_scheme"] != "never"))
        else:
            raise ValueError(d["type"])

    def walk_post(self, p):
        if not p:
            return
        if p["type"] == "Sequence":
            for x in p["processors"]:
                self.walk_post(x)
        elif p["type"] == "TemplateProcessing":
            into = self.prefix
            for item in p["single"]:
                if "Sequence" in item:
                    into = self.suffix
                else:
                    into += p["special_tokens"][item["SpecialToken"]["id"]]["ids"]

    # ---- encoding
    def split_added(self, text, parse_special):
        """[(text, starts_at_0) or id] — added tokens matched leftmost-longest."""
        toks = [a for a in self.added if parse_special or not a.get("special")]
        out, seg, i = [], 0, 0
        while i < len(text):
            best = None
            for a in toks:
                if text.startswith(a["content"], i) and (best is None or len(a["content"]) > len(best["content"])):
                    best = a
            if best is None:
                i += 1
                continue
            start, stop = i, i + len(best["content"])
            if best.get("lstrip"):
                while start > seg and text[start - 1] in WHITE:
                    start -= 1
            if best.get("rstrip"):
                while stop < len(text) and text[stop] in WHITE:
                    stop += 1
            if start > seg:
                out.append((text[seg:start], seg == 0))
            out.append(best["id"])
            seg = i = stop
        if seg < len(text):
            out.append((text[seg:], seg == 0))
        return out

    def normalize(self, s):
        for step in self.norm:
            if step[0] == "nfc":
                s = unicodedata.normalize("NFC", s)
            elif step[0] == "prepend":
                s = step[1] + s if s else s
            elif step[0] == "replace":
                s = s.replace(step[1], step[2])
        return s

    def pretokenize(self, s, first):
        pieces = [(s, first)]
        for step in self.pre:
            nxt = []
            for p, f in pieces:
                if step[0] == "replace":
                    nxt.append((p.replace(step[1], step[2]), f))
                elif step[0] == "prefix":
                    _, text, first_only = step
                    if (f or not first_only) and not p.startswith(text):
                        p = text + p
                    nxt.append((p, f))
                else:
                    _, rx, behavior = step
                    bounds, last = [], 0
                    for m in rx.finditer(p):
                        if m.start() == m.end():
                            continue
                        if behavior == "Isolated":
                            bounds += [(last, m.start()), (m.start(), m.end())]
                            last = m.end()
                        elif behavior == "MergedWithNext":
                            bounds.append((last, m.start()))
                            last = m.start()
                        else:
                            raise ValueError(behavior)
                    bounds.append((last, len(p)))
                    nxt += [(p[a:b], f and a == 0) for a, b in bounds]
            pieces = [(p, f) for p, f in nxt if p]
        return [p for p, f in pieces if p]

    def bpe(self, piece):
        if self.byte_level:
            syms = [B2U[b] for b in piece.encode("utf-8")]
        else:
            syms, prev_unk = [], False
            for ch in piece:
                if ch in self.vocab:
                    syms.append(ch)
                    prev_unk = False
                elif self.byte_fallback and all(f"<0x{b:02X}>" in self.vocab for b in ch.encode("utf-8")):
                    syms += [f"<0x{b:02X}>" for b in ch.encode("utf-8")]
                    prev_unk = False
                elif self.unk is not None:
                    if not (self.fuse_unk and prev_unk):
                        syms.append(self.unk)
                    prev_unk = True
        word = "".join(syms)
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            syms[i:i + 2] = [syms[i] + syms[i + 1]]
        return [self.vocab[s] for s in syms]

    def encode(self, text, add_special, parse_special):
        ids = []
        for seg in self.split_added(text, parse_special):
            if isinstance(seg, int):
                ids.append(seg)
                continue
            for p in self.pretokenize(self.normalize(seg[0]), seg[1]):
                ids += self.bpe(p)
        return self.prefix + ids + self.suffix if add_special else ids

    # ---- decoding: the decoder chain over token strings, then bytes → UTF-8
    def decode(self, ids, skip_special, raw=False):
        toks = [self.id2tok[i] for i in ids if not (skip_special and i in self.special)]
        parts = [t.encode("utf-8") for t in toks]
        for step in self.dec:
            if step[0] == "bytelevel":
                parts = [bytes(U2B[c] for c in t) if all(c in U2B for c in t) else t.encode("utf-8") for t in toks]
            elif step[0] == "replace":
                parts = [p.replace(step[1].encode(), step[2].encode()) for p in parts]
            elif step[0] == "bytefallback":
                parts = [bytes([int(t[3:5], 16)]) if regex.fullmatch(r"<0x[0-9A-Fa-f]{2}>", t) else p for t, p in zip(toks, parts)]
            elif step[0] == "fuse":
                parts = [b"".join(parts)]
            elif step[0] == "strip":
                n = 0
                while n < step[1] and parts and parts[0][n:n + 1] == b" ":
                    n += 1
                if parts:
                    parts[0] = parts[0][n:]
            elif step[0] == "metaspace":
                r = step[1].encode()
                parts = [p.replace(r, b"" if i == 0 and step[2] else b" ") for i, p in enumerate(parts)]
        out = b"".join(parts)
        return out if raw else out.decode("utf-8")


def main():
    work = sys.argv[1]
    cases = json.load(open(os.path.join(work, "cases.json"), encoding="utf-8"))
    for fx in sys.argv[2:]:
        ref = Ref(os.path.join(work, fx))
        nfc = any(s[0] == "nfc" for s in ref.norm)
        out = []
        for text in cases:
            ids = ref.encode(text, False, False)
            ids_sp = ref.encode(text, True, True)
            rt = ref.decode(ids, False)
            want = unicodedata.normalize("NFC", text) if nfc else text
            # HF's Metaspace decoder drops every "▁" of the first token, so "  x" comes back as "x"
            exact = rt == want
            assert exact or any(d[0] == "metaspace" for d in ref.dec), (fx, text, rt)
            out.append({"pre": ref.pretokenize(ref.normalize(text), True), "ids": ids, "ids_sp": ids_sp,
                        "dec": ref.decode(ids_sp, False), "dec_skip": ref.decode(ids_sp, True), "rt": rt, "exact": exact})
        with open(os.path.join(work, fx, "expect.json"), "w", encoding="utf-8") as f:
            json.dump({"cases": out}, f, ensure_ascii=False)
        print(f"tok_ref: {fx}: {len(out)} cases, {sum(len(c['ids']) for c in out)} ids")


if __name__ == "__main__":
    main()
