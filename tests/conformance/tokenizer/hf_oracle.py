#!/usr/bin/env python3
"""Reference outputs of Hugging Face `tokenizers` for kite's tokenizer parity test.

For one tokenizer this script
  1. materialises tokenizer.json (+ tokenizer_config.json) in OUT_DIR/NAME/: decompressed from
     tests/data/tokenizers/NAME, or, for a vocab.json + merges.txt tokenizer (qwen2.5), built by
     `transformers` (AutoTokenizer -> backend_tokenizer.to_str()),
  2. decompresses the shared corpus to OUT_DIR/corpus.jsonl (atomically),
  3. runs the real `tokenizers` on every corpus string and writes OUT_DIR/NAME/oracle.jsonl:
       {"enc": ids(add_special_tokens=True), "enc_ns": ids(add_special_tokens=False),
        "enc_np": ids(add_special_tokens=True, special tokens not parsed),
        "dec": decode(enc), "dec_skip": decode(enc, skip_special_tokens=True)}
     one line per corpus string, then lines {"rand": ids, "dec": ..., "dec_skip": ...} for
     seeded random id sequences (byte tokens, special tokens, out-of-range ids),
  4. records `transformers` AutoTokenizer ids where they differ from `tokenizers` ("tf"), on the
     first --transformers-check strings.

Corpus strings that are not valid UTF-8 ({"hex": ...}) reach Python as
bytes.decode("utf-8", "replace"); kite gets the raw bytes and must give the same ids.

Usage: hf_oracle.py --name NAME --src DIR_OR_FILE --corpus corpus.jsonl.gz --out-dir DIR
"""
import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def read_maybe_gz(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    with gzip.open(path + ".gz", "rb") as f:
        return f.read()


def exists_maybe_gz(path):
    return os.path.exists(path) or os.path.exists(path + ".gz")


def corpus_texts(corpus_bytes):
    for line in corpus_bytes.split(b"\n"):
        if not line:
            continue
        rec = json.loads(line)
        if "t" in rec:
            yield rec["t"]
        else:
            yield bytes.fromhex(rec["hex"]).decode("utf-8", "replace")


def materialise(name, src, dst_dir):
    """Writes dst_dir/tokenizer.json (+ tokenizer_config.json); returns the transformers dir."""
    os.makedirs(dst_dir, exist_ok=True)
    if os.path.isfile(src) or os.path.isfile(src + ".gz"):
        src_dir = os.path.dirname(src)
        tok_json = read_maybe_gz(src)
    else:
        src_dir = src
        tok_json = None
    if tok_json is None and exists_maybe_gz(os.path.join(src_dir, "tokenizer.json")):
        tok_json = read_maybe_gz(os.path.join(src_dir, "tokenizer.json"))
    cfg_path = os.path.join(src_dir, "tokenizer_config.json")
    cfg = read_maybe_gz(cfg_path) if exists_maybe_gz(cfg_path) else None
    if tok_json is None:
        # vocab.json + merges.txt: let transformers build the fast tokenizer.
        from transformers import AutoTokenizer
        with tempfile.TemporaryDirectory() as tmp:
            for fname in ("vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
                          "special_tokens_map.json"):
                p = os.path.join(src_dir, fname)
                if exists_maybe_gz(p):
                    with open(os.path.join(tmp, fname), "wb") as f:
                        f.write(read_maybe_gz(p))
            tok = AutoTokenizer.from_pretrained(tmp)
            tok_json = tok.backend_tokenizer.to_str().encode("utf-8")
    with open(os.path.join(dst_dir, "tokenizer.json"), "wb") as f:
        f.write(tok_json)
    if cfg is not None:
        with open(os.path.join(dst_dir, "tokenizer_config.json"), "wb") as f:
            f.write(cfg)
    return dst_dir


def random_id_sequences(tok, count, seed):
    from tokenizers import Tokenizer  # noqa: F401  (tok is one)
    rng = random.Random(seed)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    vocab = tok.get_vocab(with_added_tokens=True)
    byte_ids = [vocab[f"<0x{b:02X}>"] for b in range(256) if f"<0x{b:02X}>" in vocab]
    special = sorted(i for i, t in tok.get_added_tokens_decoder().items() if t.special)
    seqs = []
    for _ in range(count):
        n = rng.randint(1, 24)
        seq = []
        for _ in range(n):
            r = rng.random()
            if r < 0.25 and byte_ids:
                seq.append(rng.choice(byte_ids))
            elif r < 0.35 and special:
                seq.append(rng.choice(special))
            elif r < 0.38:
                seq.append(vocab_size + rng.randint(0, 50))  # no such token: skipped
            else:
                seq.append(rng.randrange(vocab_size))
        seqs.append(seq)
    return seqs


def write_corpus(args, corpus):
    """Decompressed corpus for the C++ test, written atomically (fixtures run in parallel)."""
    os.makedirs(args.out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out_dir)
    with os.fdopen(fd, "wb") as f:
        f.write(corpus)
    os.replace(tmp, os.path.join(args.out_dir, "corpus.jsonl"))


def sentencepiece_oracle(args):
    """Ids and decodes of the SentencePiece library (the vocabulary published with stories260K)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=args.src)
    out_dir = os.path.join(args.out_dir, args.name)
    os.makedirs(out_dir, exist_ok=True)
    with gzip.open(args.corpus, "rb") as f:
        corpus = f.read()
    write_corpus(args, corpus)
    fd, tmp = tempfile.mkstemp(dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for text in corpus_texts(corpus):
            ids = sp.encode(text)
            f.write(json.dumps({"enc_ns": ids, "dec": sp.decode(ids)}, ensure_ascii=False) + "\n")
    os.replace(tmp, os.path.join(out_dir, "oracle.jsonl"))
    print(f"{args.name}: sentencepiece {sp.vocab_size()} pieces -> {out_dir}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--src", required=True, help="tokenizer dir or tokenizer.json[.gz] path")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--random-decodes", type=int, default=3000)
    ap.add_argument("--transformers-check", type=int, default=5000,
                    help="how many corpus strings to also run through transformers")
    ap.add_argument("--sentencepiece", action="store_true",
                    help="SRC is a SentencePiece .model: write its ids/decodes instead")
    args = ap.parse_args()

    if args.sentencepiece:
        return sentencepiece_oracle(args)

    from tokenizers import Tokenizer

    os.makedirs(args.out_dir, exist_ok=True)
    out_dir = os.path.join(args.out_dir, args.name)
    tok_dir = materialise(args.name, args.src, out_dir)

    with gzip.open(args.corpus, "rb") as f:
        corpus = f.read()
    write_corpus(args, corpus)

    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    texts = list(corpus_texts(corpus))

    lines = []
    encs = []
    for text in texts:
        tok.encode_special_tokens = False
        enc = tok.encode(text, add_special_tokens=True).ids
        enc_ns = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        enc_np = tok.encode(text, add_special_tokens=True).ids
        tok.encode_special_tokens = False
        encs.append(enc)
        lines.append({"enc": enc, "enc_ns": enc_ns, "enc_np": enc_np,
                      "dec": tok.decode(enc, skip_special_tokens=False),
                      "dec_skip": tok.decode(enc, skip_special_tokens=True)})
    for seq in random_id_sequences(tok, args.random_decodes, seed=7):
        lines.append({"rand": seq, "dec": tok.decode(seq, skip_special_tokens=False),
                      "dec_skip": tok.decode(seq, skip_special_tokens=True)})

    # What transformers gives. Its tokenizer classes may rebuild the pipeline from the vocabulary
    # (transformers 5's LlamaTokenizer replaces the legacy Prepend/Replace normalizer with a
    # Metaspace pre-tokenizer), so it can differ from tokenizer.json; record where it does.
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(tok_dir)
    disagree = 0
    checked = min(len(texts), args.transformers_check)
    for text, rec in zip(texts[:checked], lines):
        tf = hf(text, add_special_tokens=True)["input_ids"]
        if tf != rec["enc"]:
            rec["tf"] = tf
            disagree += 1
    print(f"{args.name}: transformers ({type(hf).__name__}) differs from tokenizers on "
          f"{disagree} of the first {checked} strings")

    fd, tmp = tempfile.mkstemp(dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for rec in lines:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, os.path.join(out_dir, "oracle.jsonl"))
    print(f"{args.name}: {len(texts)} strings, {args.random_decodes} random decodes -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
