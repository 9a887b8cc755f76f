#!/usr/bin/env python3
"""Decompresses the llama.cpp vocabulary test GGUFs (tests/data/vocab-tests/*.gguf.gz) into the
build tree for vocab_tests_test, which reads them with kite's GGUF parser.

Usage: prepare_vocab_tests.py SRC_DIR OUT_DIR
"""
import glob
import gzip
import os
import shutil
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for path in sorted(glob.glob(os.path.join(src, "*.gguf.gz"))):
        dst = os.path.join(out, os.path.basename(path)[:-3])
        tmp = dst + ".tmp"
        with gzip.open(path, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
        n += 1
    print(f"decompressed {n} GGUF vocabularies into {out}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
