#!/usr/bin/python3
"""Reference for `xvlm tokenize`, in Python, for differential testing on many
random texts (the official fixture has 43 cases).

It restates, with Python's own str/re/unicodedata, what the official pipeline
does: dataset/utils.py pre_caption, and transformers 4.12.5 BertTokenizer.tokenize
(special tokens cut out, per-character lower-casing, BasicTokenizer, WordPiece).
transformers itself is not needed. Usage:

    tools/text_reference.py VOCAB [--max-words 30] [--max-tokens 40] < in.jsonl > out.jsonl
    tools/text_reference.py --random N --seed S > texts.jsonl   (random test texts)
"""
import argparse
import json
import random
import re
import sys
import unicodedata

SPECIAL = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


def load_vocab(path):
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for i, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = i
    return vocab


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    ranges = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    return any(a <= cp <= b for a, b in ranges)


def basic_words(text):
    cleaned = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or is_control(ch):
            continue
        cleaned.append(" " if is_whitespace(ch) else ch)
    spaced = "".join(" " + ch + " " if is_cjk(ord(ch)) else ch for ch in cleaned)
    out = []
    for word in spaced.split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
        cur = []
        for ch in word:
            if is_punct(ch):
                if cur:
                    out.append("".join(cur))
                    cur = []
                out.append(ch)
            else:
                cur.append(ch)
        if cur:
            out.append("".join(cur))
    return [w for w in " ".join(out).split()]


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab):
    pattern = "(" + "|".join(re.escape(s) for s in SPECIAL) + ")|(.+?)"
    text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
    split = re.split("(" + "|".join(re.escape(s) for s in SPECIAL) + ")", text)
    tokens = []
    for piece in split:
        if piece in SPECIAL:
            tokens.append(piece)
        elif piece:
            for w in basic_words(piece):
                tokens.extend(wordpiece(w, vocab))
    return tokens


def pre_caption(caption, max_words):
    caption = re.sub(r"([,.'!?\"()*#:;~])", "", caption.lower()).replace("-", " ").replace("/", " ")
    caption = caption.replace("<person>", "person")
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n").strip(" ")
    words = caption.split(" ")
    if len(words) > max_words:
        caption = " ".join(words[:max_words])
    if not len(caption):
        raise ValueError("pre_caption yields invalid text")
    return caption


def process(text, vocab, max_words, max_tokens):
    ids_of = lambda toks: [vocab.get(t, vocab["[UNK]"]) for t in toks]
    toks = tokenize(text, vocab)
    out = {"text": text, "tokens": toks, "ids": ids_of(toks)}
    try:
        cap = pre_caption(text, max_words)
    except ValueError as e:
        out.update(pre_caption=None, pre_caption_error="ValueError: " + str(e), caption_tokens=None,
                   caption_ids=None, pretrain_input_ids=None)
        return out
    ctoks = tokenize(cap, vocab)
    out.update(pre_caption=cap, pre_caption_error=None, caption_tokens=ctoks, caption_ids=ids_of(ctoks),
               pretrain_input_ids=ids_of(["[CLS]"] + ctoks[:max_tokens - 1]))
    return out


def random_texts(n, seed):
    """Texts that stress every rule: ASCII words and punctuation, accents and
    combining marks, CJK, Greek sigma, spaces of all kinds, controls, specials."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " " * 8 + "\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
        ",.'!?\"()*#:;~-/<>[]{}@&%$^_`|\\+=",
        "\u00e9\u00e8\u00fc\u00f1\u00e7\u00c5\u00df\u00e6\u00f8\u0130\u0131\u01c4\u01c5\u1e9e\u212a\u2126",
        "\u0300\u0301\u0308\u0327\u0345\u05b0\u0e31\u1dc0\u20d0\u0903\u093e",
        "\u03a3\u03c3\u03c2\u0391\u039f\u0394\u03b1\u1f88\u1fbc\u0386",
        "\u4e00\u4eba\u732b\u72d7\u5c71\u3042\u30a2\ud55c\uac00\uf900\u3400\U00020000\u2f00",
        "\u200b\u200c\u200d\ufeff\u00ad\ufffd\ue000\U000f0000\u0378\u2066",
        "\u00a1\u00bf\u2013\u2014\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026\u3001\u3002\uff01\uff0c\u00b7\u0387",
        "\u216b\u2460\u24b6\u00b2\u00bd\u00aa\u00ba\u02b0\u1d2c\u2071\U0001f600\U0001f130",
    ]
    specials = SPECIAL + ["<person>", "<PERSON>", "[mask]", "[unused1]"]
    words = ["a", "man", "riding", "horse", "beach", "dog", "cafe", "playing", "the", "straße", "ΟΔΟΣ"]
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 12)):
            r = rng.random()
            if r < 0.1:
                parts.append(rng.choice(specials))
            elif r < 0.4:
                parts.append(rng.choice(words))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
            parts.append(rng.choice([" ", "", " ", "  "]))
        yield "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab", nargs="?")
    ap.add_argument("--max-words", type=int, default=30)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--random", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.random:
        for t in random_texts(a.random, a.seed):
            print(json.dumps({"text": t}, ensure_ascii=True))
        return
    vocab = load_vocab(a.vocab)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(process(json.loads(line)["text"], vocab, a.max_words, a.max_tokens), ensure_ascii=False))


if __name__ == "__main__":
    main()
