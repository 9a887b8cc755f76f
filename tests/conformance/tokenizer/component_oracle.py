#!/usr/bin/env python3
"""Component parity oracle: synthetic tokenizers exercising every normalizer, pre-tokenizer,
model, post-processor and decoder kite supports, built and run by Hugging Face `tokenizers`.

For each configuration below it writes OUT_DIR/components/NAME/tokenizer.json and oracle.jsonl
(same record format as hf_oracle.py) over a subset of the corpus, plus
OUT_DIR/components/index.txt (one name per line) and OUT_DIR/components/corpus.jsonl (the
subset). Vocabularies come from the pipeline itself: a WordLevel vocabulary of the pre-tokens
`tokenizers` produces (so any difference in normalization or pre-tokenization changes ids), or
a BPE / WordPiece model trained by `tokenizers`' own trainers on the subset.

Usage: component_oracle.py --corpus corpus.jsonl.gz --out-dir DIR [--every 6]
"""
import argparse
import collections
import gzip
import json
import os
import random
import sys
import tempfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,  # noqa: E402
                        pre_tokenizers, processors, trainers)

N = normalizers
P = pre_tokenizers
D = decoders

ADDED = [AddedToken("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
         AddedToken("Hello", single_word=True, normalized=True, special=False),
         AddedToken("world", normalized=False, special=False),
         AddedToken("[SEP]", rstrip=True, special=True, normalized=False),
         AddedToken("<|eot|>", special=True, normalized=False),
         AddedToken("ab", special=False, normalized=True, lstrip=True)]


def configs():
    """name -> dict(normalizer, pre, model ('wordlevel' | 'bpe' | 'bytebpe' | 'wordpiece'),
    decoder, post, trainer options)."""
    return {
        "lowercase_whitespace": dict(n=N.Lowercase(), p=P.Whitespace()),
        "nfkd_strip_accents": dict(n=N.Sequence([N.NFKD(), N.StripAccents()]), p=P.WhitespaceSplit()),
        "nfkc_punctuation": dict(n=N.NFKC(), p=P.Sequence([P.WhitespaceSplit(), P.Punctuation()])),
        "nfd_lowercase_strip": dict(n=N.Sequence([N.NFD(), N.Lowercase(), N.Strip()]), p=P.Digits(individual_digits=False)),
        "bert_uncased": dict(n=N.BertNormalizer(lowercase=True), p=P.BertPreTokenizer(), model="wordpiece",
                             d=D.WordPiece(), post=processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))),
        "bert_cased": dict(n=N.BertNormalizer(lowercase=False, handle_chinese_chars=False, strip_accents=True,
                                              clean_text=True), p=P.BertPreTokenizer()),
        "punctuation_behaviors": dict(p=P.Sequence([P.Punctuation("merged_with_previous"), P.Digits(individual_digits=True),
                                                    P.Punctuation("contiguous")])),
        "punctuation_removed_next": dict(p=P.Sequence([P.Punctuation("removed"), P.WhitespaceSplit(),
                                                       P.Punctuation("merged_with_next")])),
        "metaspace_first_split": dict(p=P.Metaspace(prepend_scheme="first", split=True),
                                      d=D.Metaspace(prepend_scheme="first")),
        "metaspace_always_bpe": dict(p=P.Metaspace(prepend_scheme="always", split=False), model="bpe",
                                     d=D.Sequence([D.Metaspace(prepend_scheme="always"), D.Strip(" ", 0, 1)])),
        "metaspace_never": dict(p=P.Metaspace(prepend_scheme="never", split=True), d=D.Metaspace(prepend_scheme="never")),
        "digits_then_metaspace": dict(n=N.Lowercase(), p=P.Sequence([P.Digits(individual_digits=True),
                                                                     P.Metaspace(prepend_scheme="first")])),
        "unicode_scripts": dict(p=P.Sequence([P.WhitespaceSplit(), P.UnicodeScripts()])),
        "char_delimiter": dict(p=P.CharDelimiterSplit("e")),
        "fixed_length": dict(n=N.NFC(), p=P.FixedLength(3)),
        "split_behaviors": dict(p=P.Sequence([P.Split(Regex(r"\s+"), "removed"), P.Split("a", "merged_with_next"),
                                              P.Split(Regex(r"[0-9]"), "contiguous", invert=True)])),
        "split_merged_previous": dict(n=N.Replace(Regex(r"\s+"), " "),
                                      p=P.Split(Regex(r"\p{P}"), "merged_with_previous")),
        "replace_regex_prepend": dict(n=N.Sequence([N.Replace(Regex(r"\s+"), " "), N.Prepend("_"),
                                                    N.Replace("e", "3")]),
                                      p=P.Split(Regex(r"\w+|[^\w\s]+"), "isolated")),
        "nmt_nfc": dict(n=N.Sequence([N.Nmt(), N.NFC()]), p=P.Whitespace()),
        "bytelevel_prefix_space": dict(p=P.ByteLevel(add_prefix_space=True, use_regex=True), model="bytebpe",
                                       d=D.ByteLevel(), post=processors.ByteLevel(trim_offsets=True)),
        "bytelevel_normalizer": dict(n=N.ByteLevel(), p=P.Whitespace()),
        "bpe_prefix_suffix": dict(n=N.Lowercase(), p=P.Whitespace(), model="bpe",
                                  trainer=dict(continuing_subword_prefix="##", end_of_word_suffix="</w>"),
                                  d=D.BPEDecoder(suffix="</w>")),
        "ctc_chars": dict(p=P.Split(Regex("."), "isolated"),
                          d=D.CTC(pad_token="<pad>", word_delimiter_token="|", cleanup=True)),
        "replace_strip_decoders": dict(p=P.WhitespaceSplit(),
                                       d=D.Sequence([D.Replace(Regex("[aeiou]+"), "*"),
                                                     D.Strip("*", 1, 1), D.Fuse()])),
        "template_pair_tokens": dict(p=P.Whitespace(),
                                     post=processors.TemplateProcessing(single="[CLS] $A [SEP] [SEP]",
                                                                        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])),
    }


def texts_of(corpus_bytes, every):
    out, records = [], []
    for i, line in enumerate(corpus_bytes.split(b"\n")):
        if not line or i % every:
            continue
        rec = json.loads(line)
        records.append(line)
        out.append(rec["t"] if "t" in rec else bytes.fromhex(rec["hex"]).decode("utf-8", "replace"))
    return out, records


def build(cfg, texts):
    kind = cfg.get("model", "wordlevel")
    special = ["[UNK]", "[CLS]", "[SEP]", "<pad>"]
    if kind == "wordlevel":
        probe = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
        if cfg.get("n"):
            probe.normalizer = cfg["n"]
        if cfg.get("p"):
            probe.pre_tokenizer = cfg["p"]
        counts = collections.Counter()
        for t in texts:
            s = probe.normalizer.normalize_str(t) if cfg.get("n") else t
            pieces = probe.pre_tokenizer.pre_tokenize_str(s) if cfg.get("p") else [(s, None)]
            counts.update(p for p, _ in pieces)
        vocab = {tok: i for i, tok in enumerate(special)}
        for piece, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:30000]:
            vocab.setdefault(piece, len(vocab))
        tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    elif kind in ("bpe", "bytebpe"):
        opts = cfg.get("trainer", {})
        tok = Tokenizer(models.BPE(unk_token="[UNK]", **{k: v for k, v in opts.items()}))
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=special, show_progress=False,
                                      initial_alphabet=P.ByteLevel.alphabet() if kind == "bytebpe" else [],
                                      **opts)
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=3000, special_tokens=special, show_progress=False)
    if cfg.get("n"):
        tok.normalizer = cfg["n"]
    if cfg.get("p"):
        tok.pre_tokenizer = cfg["p"]
    if kind != "wordlevel":
        tok.train_from_iterator(texts, trainer=trainer)
    if cfg.get("d"):
        tok.decoder = cfg["d"]
    if cfg.get("post"):
        tok.post_processor = cfg["post"]
    tok.add_special_tokens([t for t in ADDED if t.special])
    tok.add_tokens([t for t in ADDED if not t.special])
    return tok


def safe_decode(tok, ids, skip):
    """tokenizers panics on a few degenerate inputs (Strip/BPEDecoder on empty token lists):
    None then, and the C++ test only checks that kite does not crash there."""
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException:  # pyo3_runtime.PanicException derives from BaseException
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--every", type=int, default=6)
    args = ap.parse_args()
    with gzip.open(args.corpus, "rb") as f:
        corpus = f.read()
    texts, records = texts_of(corpus, args.every)
    texts += ["Hello world", "say Hello to the world", "xHello Hello!", " <mask> a<mask>b [SEP]  x",
              "ab cab  ab", "<|eot|>", "HELLO Hello hello", "  leading and trailing  "]
    records += [json.dumps({"t": t}).encode() for t in texts[len(records):]]
    root = os.path.join(args.out_dir, "components")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "corpus.jsonl"), "wb") as f:
        f.write(b"\n".join(records) + b"\n")
    names = []
    rng = random.Random(11)
    for name, cfg in configs().items():
        tok = build(cfg, texts)
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        lines = []
        for t in texts:
            tok.encode_special_tokens = False
            enc = tok.encode(t).ids
            enc_ns = tok.encode(t, add_special_tokens=False).ids
            tok.encode_special_tokens = True
            enc_np = tok.encode(t).ids
            tok.encode_special_tokens = False
            lines.append({"enc": enc, "enc_ns": enc_ns, "enc_np": enc_np,
                          "dec": safe_decode(tok, enc, False),
                          "dec_skip": safe_decode(tok, enc, True)})
        n_vocab = tok.get_vocab_size(with_added_tokens=True)
        for _ in range(500):
            seq = [rng.randrange(n_vocab + 3) for _ in range(rng.randint(1, 12))]
            if rng.random() < 0.3 and seq:
                seq.append(seq[-1])  # repeats (CTC collapses them)
            lines.append({"rand": seq, "dec": safe_decode(tok, seq, False),
                          "dec_skip": safe_decode(tok, seq, True)})
        fd, tmp = tempfile.mkstemp(dir=d)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in lines:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, os.path.join(d, "oracle.jsonl"))
        names.append(name)
    with open(os.path.join(root, "index.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{len(names)} component tokenizers x {len(texts)} strings -> {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
