#!/usr/bin/env python3
"""chat_ref.py — independent reference for language/chat.c (used by tests/test_chat.c).

Renders the real chat templates saved in tests/ref/templates/*.jinja with jinja2, set up the way
transformers' apply_chat_template sets it up (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, the `{% generation %}` block, raise_exception, bos/eos tokens passed
as template variables), and writes OUT/chat_cases.json:

  {"detect": [{"template": file, "kind": name}],
   "cases":  [{"template", "kind", "case", "bos", "messages": [[role, content]...],
               "expected": str | null, "error": bool}]}

"expected" is what the model sees as text: the template's output, with the BOS prepended when
the template leaves BOS to the tokenizer (the tokenizer adds it with add_special_tokens=True).
t2 renders with plain-string contents; content-part templates (the llava-hf processors) get the
same message converted to parts: each leading "<image>\n" becomes an {"type": "image"} part and
the rest one {"type": "text"} part — the form HF's processors are fed.

Cases a template is NOT compared on are listed in SKIP with the reason (t2 follows one canonical
rendering per family; see language/chat.c). Usage: chat_ref.py TEMPLATES_DIR OUT_DIR
"""
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationBlock(Extension):
    """transformers' AssistantTracker, reduced to what rendering needs: the body is output as is."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[GenerationBlock, jinja2.ext.loopcontrols])
ENV.globals["raise_exception"] = raise_exception

SYS = "You are a careful assistant that answers briefly."
CASES = {
    "user":        [("user", "What is the capital of France?")],
    "system_user": [("system", SYS), ("user", "Name a prime number.")],
    "multi":       [("system", SYS), ("user", "Hello!"), ("assistant", "Hi. How can I help?"),
                    ("user", "Count to three.")],
    "multi_nosys": [("user", "Hello!"), ("assistant", "Hi there."), ("user", "Who are you?")],
    "spaces":      [("user", "  padded question \n"), ("assistant", " an answer\t"),
                    ("user", "next\u00a0 ")],
    "image":       [("user", "<image>\nWhat is shown in this image?")],
    "image_multi": [("system", SYS), ("user", "<image>\nDescribe the picture."),
                    ("assistant", "A cat on a mat."), ("user", "What colour is the cat?")],
    "not_alternating": [("user", "one"), ("user", "two")],
}

# template file -> (t2 kind, bos_token, eos_token, content parts?, tokenizer adds BOS?)
TEMPLATES = {
    "llava-1.5-7b-hf":                  ("vicuna",  "<s>", "</s>", True, True),
    "llama3-llava-next-8b-hf":          ("llama3",  "<|begin_of_text|>", "<|eot_id|>", True, True),
    "llava-onevision-qwen2-0.5b-si-hf": ("chatml",  None, "<|im_end|>", True, False),
    "llama-2-7b-chat-hf":               ("llama2",  "<s>", "</s>", False, True),
    "meta-llama-3-8b-instruct":         ("llama3",  "<|begin_of_text|>", "<|eot_id|>", False, True),
    "qwen2-0.5b-instruct":              ("chatml",  None, "<|im_end|>", False, False),
    "mistral-7b-instruct-v0.2":         ("mistral", "<s>", "</s>", False, True),
}

# Renderings t2 deliberately does not reproduce (documented in language/chat.c).
SKIP = {
    # HF's llava-next processor template writes "\n" before every text part, so text-only turns
    # get "\n\n\n" after the header; t2 follows Meta-Llama-3-Instruct's template (which
    # LLaVA-NeXT's own conv_llava_llama_3 applies). Both agree when a user turn starts with an image.
    "llama3-llava-next-8b-hf": {"user", "system_user", "multi", "multi_nosys", "spaces",
                                "image_multi", "not_alternating"},
    # The onevision processor template has no default system prompt; t2's chatml adds Qwen2's
    # "You are a helpful assistant." when none is given (as LLaVA-OneVision's own conv does).
    "llava-onevision-qwen2-0.5b-si-hf": {"user", "multi_nosys", "spaces", "image",
                                         "not_alternating"},
}

# Mistral-7B-Instruct-v0.2 raises on a system message; t2 folds it into the first user turn as
# "SYSTEM\n\nUSER" (what Mistral's later templates do). Those cases are compared against the
# template rendered on the folded conversation.
FOLD_SYSTEM = {"mistral-7b-instruct-v0.2"}


def to_parts(content):
    parts = []
    while content.startswith("<image>\n"):
        parts.append({"type": "image"})
        content = content[len("<image>\n"):]
    parts.append({"type": "text", "text": content})
    return parts


def render(name, msgs):
    kind, bos, eos, parts, adds_bos = TEMPLATES[name]
    with open(os.path.join(TEMPLATES_DIR, name + ".jinja"), encoding="utf-8") as f:
        src = f.read()
    if name in FOLD_SYSTEM and msgs and msgs[0][0] == "system":
        rest = list(msgs[1:])
        if rest and rest[0][0] == "user":
            rest[0] = ("user", msgs[0][1] + "\n\n" + rest[0][1])
        msgs = rest
    messages = [{"role": r, "content": to_parts(c) if parts else c} for r, c in msgs]
    out = ENV.from_string(src).render(messages=messages, add_generation_prompt=True,
                                      bos_token=bos, eos_token=eos, tools=None, documents=None)
    if adds_bos and "bos_token" not in src:
        out = bos + out
    return out


def main():
    global TEMPLATES_DIR
    TEMPLATES_DIR, out_dir = sys.argv[1], sys.argv[2]
    result = {"detect": [], "cases": []}
    for name, (kind, bos, _eos, _parts, _adds) in TEMPLATES.items():
        result["detect"].append({"template": name + ".jinja", "kind": kind})
        for case, msgs in CASES.items():
            if case in SKIP.get(name, ()):
                continue
            try:
                expected, error = render(name, msgs), False
            except TemplateError:
                expected, error = None, True
            result["cases"].append({"template": name, "kind": kind, "case": case,
                                    "bos": bos or "", "messages": [list(m) for m in msgs],
                                    "expected": expected, "error": error})
    with open(os.path.join(out_dir, "chat_cases.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print(f"chat_ref: {len(result['cases'])} cases, {len(result['detect'])} templates")


if __name__ == "__main__":
    main()
