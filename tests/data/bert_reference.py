#!/usr/bin/python3
"""bert_reference.py: a Python transcription of Hugging Face Transformers' slow BertTokenizer
(tokenization_bert.py: BasicTokenizer + WordpieceTokenizer, v4.3x, with the NFC step) built on
Python's own unicodedata and str.lower(), used as the reference for octet's C tokenizer where
python3-transformers is not packaged (Debian bookworm has neither transformers nor tokenizers).

Usage:
  bert_reference.py tokenize VOCAB LOWER(0|1) STRIP(-1|0|1) < texts.txt
      prints for each text the basic tokens joined by spaces, a TAB, and the WordPiece tokens
      joined by spaces;
  bert_reference.py make-vocab BASE_VOCAB OUT < texts.txt
      writes BASE_VOCAB plus pieces derived from the texts' basic tokens (cased and uncased):
      words seen twice, every character alone and as "##c", and "##" suffixes of 2-4
      characters of every third word, so that greedy matching has real choices to make.
Texts: one per line, with the escapes \\n, \\t, \\\\ and \\uXXXX.
"""
import re
import sys
import unicodedata

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def is_whitespace(ch):
    if ch in " \t\n\r":
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class Basic:
    def __init__(self, lower, strip, chinese=True):
        self.lower, self.strip, self.chinese = lower, strip, chinese

    def clean(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or is_control(ch):
                continue
            out.append(" " if is_whitespace(ch) else ch)
        return "".join(out)

    def cjk(self, text):
        return "".join(f" {c} " if is_chinese_char(ord(c)) else c for c in text)

    def strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    def split_punc(self, text):
        out, cur = [], []
        for ch in text:
            if is_punctuation(ch):
                if cur:
                    out.append("".join(cur))
                    cur = []
                out.append(ch)
            else:
                cur.append(ch)
        if cur:
            out.append("".join(cur))
        return out

    def tokenize(self, text):
        text = self.clean(text)
        if self.chinese:
            text = self.cjk(text)
        text = unicodedata.normalize("NFC", text)
        out = []
        for tok in text.split():
            if self.lower:
                tok = tok.lower()
                if self.strip is not False:
                    tok = self.strip_accents(tok)
            elif self.strip:
                tok = self.strip_accents(tok)
            out.extend(self.split_punc(tok))
        return out


def wordpiece(vocab, word, max_chars=100):
    if len(word) > max_chars:
        return ["[UNK]"]
    out, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        out.append(cur)
        start = end
    return out


def split_specials(text):
    """Specials written in the text stay whole (Transformers' added-token trie)."""
    parts, i = [], 0
    while True:
        best = None
        for s in SPECIALS:
            j = text.find(s, i)
            if j >= 0 and (best is None or j < best[0]):
                best = (j, s)
        if best is None:
            parts.append((False, text[i:]))
            return parts
        parts.append((False, text[i:best[0]]))
        parts.append((True, best[1]))
        i = best[0] + len(best[1])


ESCAPE = re.compile(r"\\(n|t|\\|u[0-9A-Fa-f]{4})")


def unescape(s):
    def one(m):
        g = m.group(1)
        return {"n": "\n", "t": "\t", "\\": "\\"}.get(g) or chr(int(g[1:], 16))
    return ESCAPE.sub(one, s)


def read_texts():
    return [unescape(line.rstrip(b"\n").decode("utf-8")) for line in sys.stdin.buffer]


def make_vocab(base_path, out_path):
    with open(base_path, encoding="utf-8") as f:
        base = [line.rstrip("\n") for line in f]
    seen, counts = set(base), {}
    for text in read_texts():
        for lower in (True, False):
            for w in Basic(lower, None).tokenize(text):
                counts[w] = counts.get(w, 0) + 1
    extra = set()
    for i, (w, n) in enumerate(sorted(counts.items())):
        if n >= 2:
            extra.add(w)
        for c in w:
            extra.update((c, "##" + c))
        if i % 3 == 0:
            for k in (2, 3, 4):
                if len(w) > k:
                    extra.add("##" + w[-k:])
    with open(out_path, "w", encoding="utf-8") as f:
        for tok in base + sorted(extra - seen):
            f.write(tok + "\n")


def tokenize(vocab_path, lower, strip):
    with open(vocab_path, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    basic = Basic(lower, strip)
    for text in read_texts():
        btoks, wtoks = [], []
        for special, part in split_specials(text):
            if special:
                btoks.append(part)
                wtoks.append(part)
                continue
            for w in basic.tokenize(part):
                btoks.append(w)
                wtoks.extend(wordpiece(vocab, w))
        sys.stdout.buffer.write((" ".join(btoks) + "\t" + " ".join(wtoks) + "\n").encode("utf-8"))


def main():
    if sys.argv[1] == "make-vocab":
        make_vocab(sys.argv[2], sys.argv[3])
    else:
        tokenize(sys.argv[2], sys.argv[3] == "1", {"-1": None, "0": False, "1": True}[sys.argv[4]])


if __name__ == "__main__":
    main()
