"""Checks that token ids decode (with SentencePiece and the model's tok512.model) to text that
starts with the publisher's greedy output in GOLDEN.md.

Usage: golden_check.py GOLDEN.md tok512.model IDS_FILE [KITE_TEXT_FILE]
IDS_FILE holds comma-separated ids (without the leading BOS). With KITE_TEXT_FILE, kite's own
decode of the same ids must equal SentencePiece's. Exit status 0 on a match.
"""

import re
import sys

import sentencepiece as spm


def main():
    golden_md, model, ids_file = sys.argv[1:4]
    golden = re.search(r"```\n(.*?)\n```", open(golden_md).read(), re.S).group(1)
    sp = spm.SentencePieceProcessor(model_file=model)
    ids = [int(x) for x in open(ids_file).read().split(",") if x.strip()]
    text = sp.decode(ids)
    golden_tokens = len(sp.encode(golden))
    if not text.startswith(golden):
        common = 0
        while common < min(len(text), len(golden)) and text[common] == golden[common]:
            common += 1
        print(f"MISMATCH after {common} characters:\n  kite:   {text[common:common + 80]!r}\n"
              f"  golden: {golden[common:common + 80]!r}")
        return 1
    if len(sys.argv) > 4:
        kite_text = open(sys.argv[4], encoding="utf-8").read()
        if kite_text != text:
            print(f"kite's decode differs from SentencePiece's:\n{kite_text!r}\n{text!r}")
            return 1
    print(f"golden text reproduced: {len(golden)} characters, {golden_tokens} golden tokens, "
          f"{len(ids)} ids generated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
