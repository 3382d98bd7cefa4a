#!/usr/bin/env python3
"""vqa_eval_ref.py — the independent reference for eval/metrics.c's VQA accuracy: a straight port of
the official GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py (master) — its
tables, processPunctuation / processDigitArticle with Python `re` exactly as written there (bugs
included: the "(?!<=\\d)" lookahead, re.UNICODE passed as sub()'s count), and evaluate()'s per-
question accuracy. It writes random-ish answers built from the pieces the rules act on, with their
expected normalisations and accuracies, as JSON for tests/test_metrics.c.

Usage: vqa_eval_ref.py OUT.json [N_CASES]
Not here: per-type aggregation, reading annotation files.
"""
import json
import random
import re
import sys

# ---- vqaEval.py, verbatim tables ----------------------------------------------------------------
contractions = {"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've",
    "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've",
    "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd", "thered've": "there'd've",
    "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've",
    "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've"}
manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4', 'five': '5',
             'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
articles = ['a', 'an', 'the']
periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
commaStrip = re.compile(r"(\d)(\,)(\d)")
punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-',
         '>', '<', '@', '`', ',', '?', '!']


def processPunctuation(inText):
    outText = inText
    for p in punct:
        if (p + ' ' in inText or ' ' + p in inText) or (re.search(commaStrip, inText) != None):
            outText = outText.replace(p, '')
        else:
            outText = outText.replace(p, ' ')
    outText = periodStrip.sub("", outText, re.UNICODE)   # sic: re.UNICODE (32) is the count
    return outText


def processDigitArticle(inText):
    outText = []
    tempText = inText.lower().split()
    for word in tempText:
        word = manualMap.setdefault(word, word)
        if word not in articles:
            outText.append(word)
    for wordId, word in enumerate(outText):
        if word in contractions:
            outText[wordId] = contractions[word]
    return ' '.join(outText)


def normalize_res(resAns):
    resAns = resAns.replace('\n', ' ')
    resAns = resAns.replace('\t', ' ')
    resAns = resAns.strip()
    resAns = processPunctuation(resAns)
    return processDigitArticle(resAns)


def accuracy(resAns, gt_answers):
    """evaluate() for one question; gts are dicts with distinct answer_id as in the annotations."""
    gts = [{'answer': a, 'answer_id': i + 1} for i, a in enumerate(gt_answers)]
    resAns = normalize_res(resAns)
    gtAcc = []
    gtAnswers = [ans['answer'] for ans in gts]
    if len(set(gtAnswers)) > 1:
        for ansDic in gts:
            ansDic['answer'] = processPunctuation(ansDic['answer'])
    for gtAnsDatum in gts:
        otherGTAns = [item for item in gts if item != gtAnsDatum]
        matchingAns = [item for item in otherGTAns if item['answer'] == resAns]
        acc = min(1, float(len(matchingAns)) / 3)
        gtAcc.append(acc)
    return float(sum(gtAcc)) / len(gtAcc)


# ---- random-ish answers ---------------------------------------------------------------------------
PIECES = [
    "100,978", "1,000", "3,5", "2.5", "5.", ".5", "10.", "0.75", "12", "7", "-3", "1.2.3",
    "one", "Two", "THREE", "none", "None", "zero", "ten", "eleven", "four", "Nine",
    "a", "A", "an", "An", "the", "The", "THE", "another", "then",
    "dont", "Dont", "DONT", "youre", "Im", "Ive", "wont", "cant", "isnt", "twas", "oclock",
    "yall", "yall'll", "hed've", "somebody'd", "let's", "don't", "it's",
    "yes", "No", "Red", "blue", "left", "Right", "cat", "dogs", "New York", "Stop", "coca cola",
    "Café", "ÉCOLE", "Straße", "İstanbul", "ÜBER", "naïve", "東京", "٣", "٣,٤", "５",
    "e.g", "U.S.A.", "a.m.", "x-ray", "t-shirt", "o'clock", "rock'n'roll", "3:30", "12:00",
]
MARKS = list(";/[]\"{}()=+\\_-><@`,?!") + [".", ":", "'", "...", "?!", "&", "#", "%", "*"]
SPACES = [" ", " ", " ", "  ", "\n", "\t", "\r", "\u00a0", "\u3000", "\u2009", ""]


def piece(r):
    x = r.random()
    if x < 0.55:
        return r.choice(PIECES)
    if x < 0.8:
        return r.choice(MARKS)
    if x < 0.9:
        return r.choice(PIECES) + r.choice(MARKS)
    return r.choice(MARKS) + r.choice(PIECES)


def answer(r):
    n = r.choice([1, 1, 1, 2, 2, 3, 4, 6])
    s = ""
    for i in range(n):
        s += piece(r)
        if i + 1 < n:
            s += r.choice(SPACES)
    if r.random() < 0.2:
        s = r.choice(SPACES) + s + r.choice(SPACES)
    if r.random() < 0.02:
        s = "a." * 40 + "5"     # more than re.UNICODE = 32 periods
    return s


def gt_set(r, pred):
    """10 human answers: copies of a few candidates, some of them the prediction in other guises."""
    cands = [answer(r) for _ in range(3)]
    cands += [pred, normalize_res(pred), processPunctuation(pred), pred.lower(), pred.strip()]
    mode = r.random()
    if mode < 0.1:
        return [r.choice(cands)] * 10             # all identical: no processing of the gts
    k = r.choice([1, 2, 2, 3, 4])
    pool = [r.choice(cands) for _ in range(k)]
    return [r.choice(pool) for _ in range(10)]


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    r = random.Random(20240517)
    norm, acc = [], []
    for _ in range(count):
        pred = answer(r)
        norm.append([pred, normalize_res(pred)])
        gts = gt_set(r, pred)
        acc.append({"pred": pred, "answers": gts, "acc": accuracy(pred, gts)})
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"norm": norm, "acc": acc}, f, ensure_ascii=False)
    print(f"vqa_eval_ref: {len(norm)} normalisations, {len(acc)} accuracy cases -> {out}")


if __name__ == "__main__":
    main()
