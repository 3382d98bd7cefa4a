#!/usr/bin/python3
"""bench_fixtures.py — fixtures for tests/test_bench.c (eval/bench.c).

  bench_fixtures.py WORK

writes, under WORK, small benchmark files of every format eval/bench.c reads — TextVQA, VQAv2,
OK-VQA, DocVQA, generic JSONL, GSM8K, ARC (original and Hugging Face layouts) — with tiny JPEG/PNG
images, plus malformed variants (one fault each), and WORK/expect.json:

  {"good": [{"name", "kind", "data", "annotations", "images", "items": [{"id", "question", "image",
             "answers", "choices", "task", "question_type", "answer_type", "ocr", "metric"}]}],
   "bad":  [{"name", "kind", "data", "annotations", "images", "contains": [str], "n_good": N}],
   "scores": [{"set", "item", "pred", "score"}]}

n_good: the items left when read with skip_bad (0: the benchmark is empty then, -1: a file-level
fault that skip_bad does not cover). The expected scores come from plain re-implementations of the
metrics below, on predictions chosen so that answer normalisation does not matter.
"""
import copy
import json
import os
import sys

import numpy as np
from PIL import Image

WORK = None


def path(*parts):
    p = os.path.join(WORK, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def image(rel, seed, fmt):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (12, 16, 3)).astype(np.uint8)
    p = path(rel)
    Image.fromarray(a).save(p, format=fmt)
    return p


def write_json(rel, obj):
    p = path(rel)
    with open(p, "w") as f:
        json.dump(obj, f, indent=1)
    return p


def write_jsonl(rel, lines):
    """LINES: objects or raw strings (written as they are)."""
    p = path(rel)
    with open(p, "w") as f:
        for x in lines:
            f.write((x if isinstance(x, str) else json.dumps(x)) + "\n")
    return p


# ------------------------------------------------------------------------------------------------
# Reference metrics (simple: predictions in expect.json avoid the normalisation corner cases).

def vqa_acc(pred, answers):
    p = pred.strip().lower()
    accs = []
    for i in range(len(answers)):
        others = answers[:i] + answers[i + 1:]
        accs.append(min(1.0, sum(a.strip().lower() == p for a in others) / 3))
    return sum(accs) / len(accs)


def lev(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[len(b)]


def anls(pred, answers, tau=0.5):
    best = 0.0
    for a in answers:
        x, y = pred.strip().lower(), a.strip().lower()
        s = 1 - lev(x, y) / max(len(x), len(y), 1)
        best = max(best, s if s >= tau else 0.0)
    return best


def exact(pred, answers):
    return float(any(pred.strip().lower() == a.strip().lower() for a in answers))


# ------------------------------------------------------------------------------------------------

def item(id, question, image, answers, metric, task, choices=None, qt=None, at=None, ocr=None):
    return {"id": str(id), "question": question, "image": image, "answers": answers, "choices": choices,
            "task": task, "question_type": qt, "answer_type": at, "ocr": ocr, "metric": metric}


def main():
    global WORK
    WORK = os.path.abspath(sys.argv[1])
    good, bad, scores = [], [], []

    def add_bad(name, kind, data, contains, n_good, annotations=None, images=None):
        bad.append({"name": name, "kind": kind, "data": data, "annotations": annotations, "images": images,
                    "contains": [os.path.basename(data)] + contains, "n_good": n_good})

    # --- TextVQA -------------------------------------------------------------------------------
    tv_ans = [["red"] * 4 + ["blue"] * 3 + ["green"] * 2 + ["pink"],
              ["stop"] * 10,
              ["coca cola"] * 6 + ["coke"] * 4]
    tv = {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": []}
    imgs = os.path.join(WORK, "textvqa", "train_images")
    for i, (iid, q) in enumerate([("0054c91397f2fe05", "what colour is the sign?"),
                                  ("00685bc495504d61", "what does the sign say?"),
                                  ("006e5f5f6d1ad6d7", "what brand is the drink?")]):
        image(f"textvqa/train_images/{iid}.jpg", i, "JPEG")
        d = {"question": q, "image_id": iid, "image_classes": ["Sign"], "flickr_original_url": "x",
             "flickr_300k_url": "y", "image_width": 1024, "image_height": 768, "answers": tv_ans[i],
             "question_tokens": q.split(), "question_id": 34602 + i, "set_name": "val"}
        if i == 1:
            d["ocr_tokens"] = ["STOP", "ALL", "WAY"]
        tv["data"].append(d)
    tvf = write_json("textvqa/TextVQA_0.5.1_val.json", tv)
    good.append({"name": "textvqa", "kind": "textvqa", "data": tvf, "annotations": None, "images": imgs,
                 "items": [item(d["question_id"], d["question"], f"{imgs}/{d['image_id']}.jpg", d["answers"],
                                "vqa", "textvqa", ocr=d.get("ocr_tokens")) for d in tv["data"]]})
    for pred in ["red", "blue", "green", "pink", "purple"]:
        scores.append({"set": "textvqa", "item": 0, "pred": pred, "score": vqa_acc(pred, tv_ans[0])})
    scores.append({"set": "textvqa", "item": 0, "pred": "Red.", "score": 1.0})   # normalisation
    scores.append({"set": "textvqa", "item": 2, "pred": "coke", "score": vqa_acc("coke", tv_ans[2])})

    def tv_bad(name, fault, contains, n_good=2):
        t = copy.deepcopy(tv)
        fault(t["data"])
        add_bad("textvqa_" + name, "textvqa", write_json(f"textvqa/bad_{name}.json", t), contains, n_good,
                images=imgs)
    tv_bad("no_question", lambda d: d[1].pop("question"), ["item 1", "id 34603", "\"question\""])
    tv_bad("nine_answers", lambda d: d[2]["answers"].pop(), ["item 2", "id 34604", "expected 10"])
    tv_bad("answers_type", lambda d: d[0].update(answers="red"), ["item 0", "id 34602", "\"answers\""])
    tv_bad("answer_number", lambda d: d[0]["answers"].__setitem__(3, 7), ["item 0", "id 34602", "answers\"[3]"])
    tv_bad("no_image", lambda d: d[1].update(image_id="nope"), ["item 1", "id 34603", "nope.jpg"])
    tv_bad("dup_id", lambda d: d[2].update(question_id=34602), ["item 2", "id 34602", "duplicate"])
    tv_bad("no_qid", lambda d: d[1].pop("question_id"), ["item 1", "question_id"])
    tv_bad("not_object", lambda d: d.__setitem__(0, "x"), ["item 0", "not an object"])
    add_bad("textvqa_empty", "textvqa", write_json("textvqa/bad_empty.json", {"data": []}), ["empty"], 0,
            images=imgs)
    add_bad("textvqa_no_data", "textvqa", write_json("textvqa/bad_no_data.json", {"questions": []}),
            ["\"data\""], -1, images=imgs)

    # --- VQAv2 and OK-VQA ------------------------------------------------------------------------
    for kind, prefix, subtype_key in [("vqav2", "v2_", True), ("okvqa", "", False)]:
        cocodir = os.path.join(WORK, kind, "val2014")
        qs, anns = [], []
        for i, (img, q) in enumerate([(42, "is this a cat?"), (7, "how many dogs?"), (393225, "what sport?")]):
            image(f"{kind}/val2014/COCO_val2014_{img:012d}.jpg", 10 + i, "JPEG")
            qid = img * 1000 + i
            qs.append({"image_id": img, "question": q, "question_id": qid})
            ans = [["yes"] * 9 + ["no"], ["2"] * 5 + ["3"] * 5, ["tennis"] * 10][i]
            anns.append({"question_type": ["is this", "how many", "what"][i],
                         "multiple_choice_answer": ans[0], "image_id": img, "question_id": qid,
                         "answer_type": ["yes/no", "number", "other"][i],
                         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                     for k, a in enumerate(ans)]})
        qdoc = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {},
                "questions": qs}
        adoc = {"info": {}, "data_type": "mscoco", "license": {}, "annotations": list(reversed(anns))}
        if subtype_key:
            qdoc["data_subtype"] = "val2014"
            adoc["data_subtype"] = "val2014"
        qname = f"{kind}/{prefix}OpenEnded_mscoco_val2014_questions.json"
        qf = write_json(qname, qdoc)
        write_json(f"{kind}/{prefix}mscoco_val2014_annotations.json", adoc)
        good.append({"name": kind, "kind": kind, "data": qf, "annotations": None, "images": cocodir,
                     "items": [item(q["question_id"], q["question"],
                                    f"{cocodir}/COCO_val2014_{q['image_id']:012d}.jpg",
                                    [x["answer"] for x in a["answers"]], "vqa", kind,
                                    qt=a["question_type"], at=a["answer_type"]) for q, a in zip(qs, anns)]})
        scores.append({"set": kind, "item": 1, "pred": "2", "score": vqa_acc("2", [x["answer"] for x in anns[1]["answers"]])})
        scores.append({"set": kind, "item": 1, "pred": "two", "score": 1.0})   # number words → digits
        scores.append({"set": kind, "item": 0, "pred": "no", "score": vqa_acc("no", ["yes"] * 9 + ["no"])})

        def vq_bad(name, qfault=None, afault=None, contains=(), n_good=2, qname=None):
            q2, a2 = copy.deepcopy(qdoc), copy.deepcopy(adoc)
            if qfault:
                qfault(q2["questions"])
            if afault:
                afault(a2["annotations"])
            qn = qname or f"{kind}/bad_{name}/{prefix}OpenEnded_mscoco_val2014_questions.json"
            qf2 = write_json(qn, q2)
            af2 = write_json(os.path.dirname(qn) + f"/{prefix}mscoco_val2014_annotations_{name}.json", a2)
            add_bad(f"{kind}_{name}", kind, qf2, list(contains), n_good, annotations=af2, images=cocodir)
        vq_bad("no_annotation", afault=lambda a: a.pop(1), contains=["item 1", "id 7001", "no annotation"])
        vq_bad("nine_answers", afault=lambda a: a[2]["answers"].pop(), contains=["item 0", "id 42000", "expected 10"])
        vq_bad("answer_obj", afault=lambda a: a[0]["answers"][4].pop("answer"),
               contains=["item 2", "id 393225002", "answer"])
        vq_bad("no_image", qfault=lambda q: q[2].update(image_id=999), afault=None,
               contains=["item 2", "id 393225002", "COCO_val2014_000000000999.jpg"])
        vq_bad("image_type", qfault=lambda q: q[0].update(image_id="42"), contains=["item 0", "id 42000", "image_id"])
        vq_bad("dup_id", qfault=lambda q: q[1].update(question_id=42000), contains=["item 1", "id 42000", "duplicate"])
        vq_bad("no_question", qfault=lambda q: q[0].pop("question"), contains=["item 0", "id 42000", "question"])
        # the annotations file is looked for beside the questions by its official name
        lone = write_json(f"{kind}/lonely/{prefix}OpenEnded_mscoco_val2014_questions.json", qdoc)
        add_bad(f"{kind}_no_annotations_file", kind, lone,
                [f"{prefix}mscoco_val2014_annotations.json"], -1, images=cocodir)

    # --- DocVQA ----------------------------------------------------------------------------------
    dv = {"dataset_name": "docvqa", "dataset_split": "val", "dataset_version": "1.0", "data": []}
    for i, (name, q, ans) in enumerate([("documents/pybv0228_81.png", "what is the date?", ["1/8/93", "01/08/93"]),
                                        ("documents/mxcj0037_2.png", "who signed the letter?", ["John Smith"]),
                                        ("documents/zzyy0001_1.png", "what is the total?", ["$ 1,200"])]):
        image(f"docvqa/{name}", 20 + i, "PNG")
        dv["data"].append({"questionId": 49153 + i, "question": q, "question_types": ["handwritten", "form"],
                           "image": name, "docId": 14465 + i, "ucsf_document_id": "pybv0228",
                           "ucsf_document_page_no": "81", "answers": ans, "data_split": "val"})
    dvf = write_json("docvqa/val_v1.0.json", dv)
    good.append({"name": "docvqa", "kind": "docvqa", "data": dvf, "annotations": None, "images": None,
                 "items": [item(d["questionId"], d["question"], os.path.join(WORK, "docvqa", d["image"]),
                                d["answers"], "anls", "docvqa", qt="handwritten") for d in dv["data"]]})
    for pred in ["John Smith", "john smith", "Jon Smith", "Jane Doe"]:
        scores.append({"set": "docvqa", "item": 1, "pred": pred, "score": anls(pred, ["John Smith"])})
    scores.append({"set": "docvqa", "item": 0, "pred": "01/08/93", "score": 1.0})

    def dv_bad(name, fault, contains, n_good=2):
        t = copy.deepcopy(dv)
        fault(t["data"])
        add_bad("docvqa_" + name, "docvqa", write_json(f"docvqa/bad_{name}.json", t), contains, n_good)
    dv_bad("no_image_key", lambda d: d[1].pop("image"), ["item 1", "id 49154", "\"image\""])
    dv_bad("empty_answers", lambda d: d[2].update(answers=[]), ["item 2", "id 49155", "answers"])
    dv_bad("no_image_file", lambda d: d[0].update(image="documents/gone.png"), ["item 0", "id 49153", "gone.png"])

    # --- generic JSONL ---------------------------------------------------------------------------
    image("generic/pics/cat.png", 30, "PNG")
    gdir = os.path.join(WORK, "generic")
    gl = [
        {"id": "g1", "image": "pics/cat.png", "question": "what animal?",
         "answers": ["cat"] * 7 + ["kitten"] * 3, "task": "vision"},
        "",
        {"id": "g2", "question": "what is 6 times 7?", "answers": ["6*7 is 42.\n#### 42"], "task": "math"},
        {"id": 3, "question": "Which is a mammal?", "choices": ["shark", "whale", "trout"], "answers": ["whale"]},
        "   ",
        {"id": "g4", "question": "capital of France?", "answers": ["Paris", "paris, france"]},
        {"id": "g5", "image": os.path.join(gdir, "pics/cat.png"), "question": "read the sign",
         "answers": ["HELLO WORLD"], "metric": "anls", "task": "ocr"},
        {"id": "g6", "question": "pick one", "choices": ["alpha", "beta"], "answer": "B", "task": "logic"},
        {"id": "g7", "question": "how many legs?", "answer": 4, "task": "gsm8k"},
        {"id": "g8", "question": "what colour?", "answers": ["blue", "navy"], "task": "textvqa"},
    ]
    glf = write_jsonl("generic/bench.jsonl", gl)
    catp = os.path.join(gdir, "pics/cat.png")
    good.append({"name": "jsonl", "kind": "jsonl", "data": glf, "annotations": None, "images": None, "items": [
        item("g1", "what animal?", catp, gl[0]["answers"], "vqa", "vision"),
        item("g2", "what is 6 times 7?", None, ["42"], "gsm8k", "math"),
        item("3", "Which is a mammal?", None, ["B"], "mc", "jsonl", choices=["shark", "whale", "trout"]),
        item("g4", "capital of France?", None, ["Paris", "paris, france"], "exact", "jsonl"),
        item("g5", "read the sign", catp, ["HELLO WORLD"], "anls", "ocr"),
        item("g6", "pick one", None, ["B"], "mc", "logic", choices=["alpha", "beta"]),
        item("g7", "how many legs?", None, ["4"], "gsm8k", "gsm8k"),
        item("g8", "what colour?", None, ["blue", "navy"], "vqa", "textvqa"),
    ]})
    scores += [{"set": "jsonl", "item": 0, "pred": "kitten", "score": vqa_acc("kitten", gl[0]["answers"])},
               {"set": "jsonl", "item": 1, "pred": "so the answer is 42", "score": 1.0},
               {"set": "jsonl", "item": 1, "pred": "41", "score": 0.0},
               {"set": "jsonl", "item": 2, "pred": "B", "score": 1.0},
               {"set": "jsonl", "item": 2, "pred": "The answer is (A)", "score": 0.0},
               {"set": "jsonl", "item": 3, "pred": " PARIS ", "score": exact(" PARIS ", ["Paris"])},
               {"set": "jsonl", "item": 3, "pred": "Lyon", "score": 0.0},
               {"set": "jsonl", "item": 4, "pred": "HELLO W0RLD", "score": anls("HELLO W0RLD", ["HELLO WORLD"])}]

    def gl_bad(name, lines, contains, n_good):
        add_bad("jsonl_" + name, "jsonl", write_jsonl(f"generic/bad_{name}.jsonl", lines), contains, n_good)
    ok1 = {"id": "a", "question": "q?", "answers": ["x"]}
    ok2 = {"id": "b", "question": "q2?", "answers": ["y"]}
    gl_bad("syntax", [ok1, "", '{"id": "c", "question": ', ok2], ["line 3", "item 1", "JSON"], 2)
    gl_bad("no_question", [ok1, {"id": "c", "answers": ["z"]}, ok2], ["line 2", "item 1", "id c", "question"], 2)
    gl_bad("no_answers", [ok1, ok2, {"id": "c", "question": "q"}], ["line 3", "item 2", "id c", "answers"], 2)
    gl_bad("answers_type", [{"id": "c", "question": "q", "answers": "z"}, ok1, ok2], ["line 1", "item 0", "id c"], 2)
    gl_bad("dup_id", [ok1, ok2, dict(ok1)], ["line 3", "item 2", "id a", "duplicate"], 2)
    gl_bad("mc_gold", [ok1, {"id": "c", "question": "q", "choices": ["u", "v"], "answers": ["w"]}, ok2],
           ["line 2", "item 1", "id c", "choices"], 2)
    gl_bad("metric", [ok1, ok2, {"id": "c", "question": "q", "answers": ["z"], "metric": "bleu"}],
           ["line 3", "item 2", "id c", "bleu"], 2)
    gl_bad("image", [ok1, {"id": "c", "question": "q", "answers": ["z"], "image": "pics/dog.png"}, ok2],
           ["line 2", "item 1", "id c", "dog.png"], 2)
    gl_bad("no_id", [ok1, {"question": "q", "answers": ["z"]}, ok2], ["line 2", "item 1", "\"id\""], 2)
    gl_bad("array", [ok1, "[1, 2]", ok2], ["line 2", "item 1", "object"], 2)
    gl_bad("blank", ["", "  ", ""], ["empty"], 0)
    gl_bad("all_bad", [{"id": "c"}, {"id": "d"}], ["line 1", "item 0"], 0)

    # --- GSM8K -----------------------------------------------------------------------------------
    gs = [{"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
           "answer": "In May she sold 48/2 = <<48/2=24>>24.\nAltogether 48+24 = <<48+24=72>>72.\n#### 72"},
          {"question": "A house costs $1,000 plus $200 fees. Total?", "answer": "1000+200=1200\n#### 1,200"},
          {"question": "What is 5 minus 8?", "answer": "5-8=-3\n#### -3"}]
    gsf = write_jsonl("gsm8k/test.jsonl", [gs[0], "", gs[1], gs[2]])
    good.append({"name": "gsm8k", "kind": "gsm8k", "data": gsf, "annotations": None, "images": None, "items": [
        item(str(i), g["question"], None, [gold], "gsm8k", "gsm8k")
        for i, (g, gold) in enumerate(zip(gs, ["72", "1200", "-3"]))]})
    scores += [{"set": "gsm8k", "item": 0, "pred": "She sold 72 clips.", "score": 1.0},
               {"set": "gsm8k", "item": 0, "pred": "72 clips, not 73", "score": 0.0},
               {"set": "gsm8k", "item": 1, "pred": "The total is $1,200.", "score": 1.0},
               {"set": "gsm8k", "item": 2, "pred": "-3", "score": 1.0},
               {"set": "gsm8k", "item": 2, "pred": "3", "score": 0.0}]
    add_bad("gsm8k_no_hashes", "gsm8k", write_jsonl("gsm8k/bad_no_hashes.jsonl", [gs[0], {"question": "q", "answer": "7"}]),
            ["line 2", "item 1", "####"], 1)
    add_bad("gsm8k_no_answer", "gsm8k", write_jsonl("gsm8k/bad_no_answer.jsonl", [{"question": "q"}, gs[1]]),
            ["line 1", "item 0", "\"answer\""], 1)

    # --- ARC -------------------------------------------------------------------------------------
    arc_orig = [
        {"id": "Mercury_7175875", "question": {"stem": "An astronomer observes that a planet rotates faster "
         "after a meteorite impact. Which is the most likely effect?", "choices": [
             {"text": "Planetary density will decrease.", "label": "A"},
             {"text": "Planetary years will become longer.", "label": "B"},
             {"text": "Planetary days will become shorter.", "label": "C"},
             {"text": "Planetary gravity will become stronger.", "label": "D"}]}, "answerKey": "C"},
        {"id": "NYSEDREGENTS_2015_4_8", "question": {"stem": "Which is a source of light?", "choices": [
            {"text": "moon", "label": "1"}, {"text": "sun", "label": "2"}, {"text": "planet", "label": "3"},
            {"text": "mirror", "label": "4"}]}, "answerKey": "2"},
    ]
    af = write_jsonl("arc/ARC-Challenge-Test.jsonl", arc_orig)
    good.append({"name": "arc", "kind": "arc", "data": af, "annotations": None, "images": None, "items": [
        item(a["id"], a["question"]["stem"], None, [gold], "mc", "arc",
             choices=[c["text"] for c in a["question"]["choices"]])
        for a, gold in zip(arc_orig, ["C", "B"])]})
    arc_hf = [{"id": "Mercury_SC_415702", "question": "George wants to warm his hands quickly. Which works best?",
               "choices": {"text": ["dry palms", "wet palms", "palms covered with oil", "palms covered with lotion"],
                           "label": ["A", "B", "C", "D"]}, "answerKey": "A"},
              {"id": "MCAS_2000_4_6", "question": "Which tool measures length?",
               "choices": {"text": ["scale", "ruler", "thermometer", "clock"], "label": ["1", "2", "3", "4"]},
               "answerKey": "2"},
              {"id": "Mercury_5", "question": "Three choices here?",
               "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}, "answerKey": "C"}]
    ahf = write_jsonl("arc/arc_hf.jsonl", arc_hf)
    good.append({"name": "arc_hf", "kind": "arc", "data": ahf, "annotations": None, "images": None, "items": [
        item(a["id"], a["question"], None, [gold], "mc", "arc", choices=a["choices"]["text"])
        for a, gold in zip(arc_hf, ["A", "B", "C"])]})
    scores += [{"set": "arc", "item": 0, "pred": "C", "score": 1.0},
               {"set": "arc", "item": 0, "pred": "The answer is (D).", "score": 0.0},
               {"set": "arc", "item": 1, "pred": "B", "score": 1.0},
               {"set": "arc_hf", "item": 1, "pred": "(B)", "score": 1.0},
               {"set": "arc_hf", "item": 1, "pred": "A", "score": 0.0}]

    def arc_bad(name, fault, contains, n_good=1, base=arc_hf):
        t = copy.deepcopy(base)
        fault(t)
        add_bad("arc_" + name, "arc", write_jsonl(f"arc/bad_{name}.jsonl", t[:2]), contains, n_good)
    arc_bad("key", lambda t: t[1].update(answerKey="E"), ["line 2", "item 1", "id MCAS_2000_4_6", "\"E\""])
    arc_bad("labels", lambda t: t[0]["choices"]["label"].pop(), ["line 1", "item 0", "id Mercury_SC_415702", "label"])
    arc_bad("no_choices", lambda t: t[0].pop("choices"), ["line 1", "item 0", "choices"])
    arc_bad("no_key", lambda t: t[1].pop("answerKey"), ["line 2", "item 1", "answerKey"])
    arc_bad("orig_choice", lambda t: t[0]["question"]["choices"][1].pop("text"),
            ["line 1", "item 0", "id Mercury_7175875", "choice 1"], base=arc_orig)

    write_json("expect.json", {"good": good, "bad": bad, "scores": scores})


if __name__ == "__main__":
    main()
