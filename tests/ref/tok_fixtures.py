#!/usr/bin/env python3
"""tok_fixtures.py WORKDIR — tokenizer fixtures for tests/test_tokenizer.c.

Trains small BPE vocabularies (a plain greedy trainer over an embedded English + code + CJK + emoji
text) and writes them in the layouts checkpoints use:
  llama3/      tokenizer.json: Llama-3 regex Split + ByteLevel, ignore_merges, "a b" merges, BOS via
               TemplateProcessing, extra lstrip/rstrip/non-special added tokens; generation_config.json
  qwen2/       tokenizer.json: NFC, Qwen2 regex, ["a","b"] merges, <|im_start|> ...; chat_template list
  qwen2_files/ the same model as vocab.json + merges.txt + tokenizer_config.json (Qwen2Tokenizer)
  gpt2/        tokenizer.json: a lone ByteLevel(use_regex) pre-tokenizer (the GPT-2 regex)
  spm/         tokenizer.json: SentencePiece-style BPE (Prepend + Replace normaliser, <0xXX> byte
               fallback, fuse_unk, <unk>/<s>/</s>, Replace/ByteFallback/Fuse/Strip decoder)
  spm_meta/    the same vocabulary with a Metaspace(prepend_scheme first) pre-tokenizer, BOS from
               tokenizer_config.json's add_bos_token
  bad_*/       malformed checkpoints, one fault each
and cases.json: the strings every fixture is tested on (fixed ones + seeded random ones).
"""
import json, os, random, sys, unicodedata
from collections import Counter
import regex

RE_LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
RE_QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
RE_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
SP = "\u2581"

CORPUS = """The quick brown fox jumps over the lazy dog. It's a tokenizer test: we're checking that
the byte-level BPE, the SentencePiece-style BPE and the special tokens all agree with a reference.
Hello world! Hello again, world. They'll say it's fine; I'm sure we'd agree that you've done well.
In 2024 there were 12345678 tokens, 3.14159 radians and 42 answers. Numbers like 1000000 and 007.
def encode(text, add_special=True):
    ids = []
    for piece in split(text):
        ids.extend(bpe(piece))  # merge by rank
    return ids

int main(int argc, char **argv) { printf("%d\\n", argc); return 0; }
for (i = 0; i < n; i++) { sum += x[i] * w[i]; }
The model answers questions about images: what colour is the car? The car is red.
Transformer-squared adapts the singular values of each weight matrix to the task at hand.
你好世界。这是一个测试。我们在测试分词器。今天天气很好，我们去公园吧。中文文本也需要处理。
こんにちは世界。これはテストです。日本語のテキストもあります。
안녕하세요 세계. 한국어 텍스트입니다.
Привет, мир! Это тест. Ελληνικά γράμματα. Ünïcödé façade naïve café résumé.
Emoji: 👋 👋🏽 🎉 🚀 😀 ❤️ 👍 — and a llama 🦙 or two 🦙🦙.
	Tabs	and  double  spaces   and newlines

and CRLF\r\nline endings\r\n.
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def train(words, n_merges):
    """Greedy BPE: words is {tuple of symbols: count}; returns the merges in order."""
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, f in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
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


def train_bytelevel(pattern, text, n_merges):
    words = Counter()
    for p in regex.findall(pattern, text):
        words[tuple(B2U[b] for b in p.encode("utf-8"))] += 1
    merges = train(words, n_merges)
    vocab = {B2U[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def added(id_, content, special=True, lstrip=False, rstrip=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": False, "special": special}


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)


def bpe_model(vocab, merges, pairs=False, ignore_merges=False, byte_fallback=False, unk=None):
    return {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": unk is not None, "byte_fallback": byte_fallback,
            "ignore_merges": ignore_merges, "vocab": vocab,
            "merges": [[a, b] for a, b in merges] if pairs else [a + " " + b for a, b in merges]}


def split_bytelevel(pattern):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}


def llama3(work):
    vocab, merges = train_bytelevel(RE_LLAMA3, CORPUS, 400)
    for w in ["Hello", "Ġtokenizer", "Ġtransformer", "ĠHello"]:   # whole words reachable only by ignore_merges
        vocab.setdefault(w, len(vocab))
    base = len(vocab) + 10           # a gap of unused ids, like the real checkpoints' reserved range
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    toks = [added(base + i, s) for i, s in enumerate(specials)]
    toks += [added(base + 5, "<|lstrip|>", lstrip=True), added(base + 6, "<|rstrip|>", rstrip=True),
             added(base + 7, "<extra>", special=False), added(base + 8, "<sep>", special=False),
             added(base + 9, "<sep><sep>", special=True)]
    bos = base
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": toks, "normalizer": None,
          "pre_tokenizer": split_bytelevel(RE_LLAMA3),
          "post_processor": {"type": "Sequence", "processors": [
              {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
              {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
               "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                        {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
               "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos], "tokens": ["<|begin_of_text|>"]}}}]},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": bpe_model(vocab, merges, ignore_merges=True)}
    d = os.path.join(work, "llama3")
    write(d + "/tokenizer.json", tj)
    write(d + "/tokenizer_config.json", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                                         "chat_template": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}",
                                         "tokenizer_class": "PreTrainedTokenizerFast"})
    write(d + "/generation_config.json", {"bos_token_id": bos, "eos_token_id": [base + 1, base + 4]})
    return tj


def qwen2(work):
    text = unicodedata.normalize("NFC", CORPUS)
    vocab, merges = train_bytelevel(RE_QWEN2, text, 350)
    base = len(vocab)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    toks = [added(base + i, s) for i, s in enumerate(specials)]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": toks,
          "normalizer": {"type": "NFC"}, "pre_tokenizer": split_bytelevel(RE_QWEN2),
          "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
          "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
          "model": bpe_model(vocab, merges, pairs=True)}
    chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    cfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
           "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": chatml}],
           "tokenizer_class": "Qwen2Tokenizer", "errors": "replace",
           "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in toks}}
    for sub in ["qwen2", "qwen2_files"]:
        d = os.path.join(work, sub)
        write(d + "/tokenizer_config.json", cfg)
        write(d + "/config.json", {"architectures": ["Qwen2ForCausalLM"], "bos_token_id": base, "eos_token_id": base})
    write(os.path.join(work, "qwen2/tokenizer.json"), tj)
    d = os.path.join(work, "qwen2_files")
    write(d + "/vocab.json", vocab)
    write(d + "/merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return tj


def gpt2(work):
    vocab, merges = train_bytelevel(RE_GPT2, CORPUS, 300)
    tj = {"version": "1.0", "added_tokens": [added(len(vocab), "<|endoftext|>")], "normalizer": None,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": bpe_model(vocab, merges)}
    write(os.path.join(work, "gpt2/tokenizer.json"), tj)
    write(os.path.join(work, "gpt2/tokenizer_config.json"), {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})
    return tj


def spm(work):
    norm = SP + CORPUS.replace(" ", SP)
    chars = Counter(norm)
    words = Counter(tuple(w) for w in regex.findall(SP + r"*[^" + SP + r"]+|" + SP + "+", norm))
    merges = train(words, 300)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    for c in sorted(c for c, n in chars.items() if n >= 3):   # rarer characters go through byte fallback
        vocab.setdefault(c, len(vocab))
    kept = []
    for a, b in merges:       # keep merges whose parts exist (rare characters were left out)
        if a in vocab and b in vocab:
            vocab.setdefault(a + b, len(vocab))
            kept.append((a, b))
    toks = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"), added(len(vocab), "<image>")]
    dec = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": SP}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tj = {"version": "1.0", "added_tokens": toks,
          "normalizer": {"type": "Sequence", "normalizers": [
              {"type": "Prepend", "prepend": SP}, {"type": "Replace", "pattern": {"String": " "}, "content": SP}]},
          "pre_tokenizer": None,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": dec, "model": bpe_model(vocab, kept, byte_fallback=True, unk="<unk>")}
    d = os.path.join(work, "spm")
    write(d + "/tokenizer.json", tj)
    write(d + "/tokenizer_config.json", {"add_bos_token": True, "add_eos_token": False,
                                         "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False},
                                         "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False},
                                         "unk_token": "<unk>", "chat_template": None})
    meta = dict(tj)
    meta["normalizer"] = None
    meta["pre_tokenizer"] = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": False}
    meta["post_processor"] = None
    meta["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"},
                                                         {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": False}]}
    d = os.path.join(work, "spm_meta")
    write(d + "/tokenizer.json", meta)
    write(d + "/tokenizer_config.json", {"add_bos_token": True, "bos_token": {"__type": "AddedToken", "content": "<s>"},
                                         "eos_token": "</s>"})
    write(d + "/chat_template.json", {"chat_template": "{{ messages }}"})
    return tj


def bad(work, good):
    def tj(name, **changes):
        t = json.loads(json.dumps(good))
        for k, v in changes.items():
            if k == "model_type":
                t["model"]["type"] = v
            elif k == "merge":
                t["model"]["merges"].insert(3, v)
            else:
                t[k] = v
        write(os.path.join(work, name, "tokenizer.json"), t)
    os.makedirs(os.path.join(work, "bad_missing"), exist_ok=True)
    write(os.path.join(work, "bad_json/tokenizer.json"), '{"model": {"type": "BPE", "vocab": {"a": 0,}')
    tj("bad_type", model_type="WordPiece")
    tj("bad_merge", merge="Ġthe zzqx")
    tj("bad_regex", pre_tokenizer={"type": "Split", "pattern": {"Regex": r"(\p{L}+"}, "behavior": "Isolated", "invert": False})
    tj("bad_pretok", pre_tokenizer={"type": "BertPreTokenizer"})
    tj("bad_config")
    write(os.path.join(work, "bad_config/tokenizer_config.json"), '{"bos_token": ')
    write(os.path.join(work, "bad_files/vocab.json"), {"a": 0, "b": 1, "ab": 2})
    write(os.path.join(work, "bad_files/merges.txt"), "#version: 0.2\na b\nab c\n")
    write(os.path.join(work, "bad_nomerges/vocab.json"), {"a": 0})


def cases():
    fixed = [
        "", "Hello", "Hello world", "I'm don't THEY'LL we've she'd It's", "12345678", "1 22 333 4444 55555",
        "👋🏽 hi", "你好世界", "a\r\nb", "  leading", "trailing  ", "multiple   spaces   here", "\ttab\t\tand tabs",
        "line1\nline2\n\nline4", " ", "\n", "\r\n\r\n", "<|begin_of_text|>Hello<|eot_id|>",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", "<s>[INST] hi [/INST]</s>",
        "mixed: café 3.14 你好 👋 <tag> x=y; \"quoted\"", "e\u0301 vs \u00e9", "a \u00a0 b \u3000 c \u2028 d \x85 e \u180e f\u180e\u180e \x0b\x0c g",
        "x <|lstrip|> y", "x  <|rstrip|>  y", "a<|lstrip|>b<|rstrip|>c", "<extra> and <sep><sep><sep>",
        "def f(x):\n    return x ** 2  # square\n", "🦙🦙🦙", "Ünïcödé façade", "<image>\nWhat is this?",
        "Hello tokenizer transformer", " Hello", "HELLO's", "?!...", "$$$ 1,000,000.00 €", "tabs\t\t\n\t end",
    ]
    rng = random.Random(1234)
    words = regex.findall(r"\S+|\s+", CORPUS)
    bits = ["the", "The", " ", "  ", "\t", "\n", "\r\n", "'s", "'LL", "don't", "123", "4567890", "3.14",
            "你好", "世界", "こんにちは", "한국어", "👋🏽", "🦙", "😀", "e\u0301", "é", "Ω", "ß", "Ünïcödé",
            "def", "(x):", "return", "{", "}", "==", "->", "#", "//", "<|begin_of_text|>", "<|eot_id|>",
            "<|lstrip|>", "<|rstrip|>", "<extra>", "<sep>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
            "<s>", "</s>", "<unk>", "<image>", "\u00a0", "\u3000", "\u2028", "\x85", "\u180e", "\u2009", "Hello", "tokenizer"]
    ranges = [(0x20, 0x7E), (0xA1, 0x17E), (0x391, 0x3C9), (0x410, 0x44F), (0x4E00, 0x4FFF), (0x3041, 0x3093),
              (0xAC00, 0xAD00), (0x1F600, 0x1F64F), (0x300, 0x36F)]
    out = list(fixed)
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 25)):
            r = rng.random()
            if r < 0.4:
                parts.append(rng.choice(words))
            elif r < 0.75:
                parts.append(rng.choice(bits))
            else:
                lo, hi = rng.choice(ranges)
                parts.append(chr(rng.randint(lo, hi)))
        out.append("".join(parts))
    return out


def main():
    work = sys.argv[1]
    llama3(work)
    qwen2(work)
    gpt2(work)
    spm(work)
    bad(work, json.load(open(os.path.join(work, "llama3/tokenizer.json"), encoding="utf-8")))
    write(os.path.join(work, "cases.json"), cases())


if __name__ == "__main__":
    main()
