#!/usr/bin/env python3
"""Generates the tokenizer parity corpus (tests/data/tokenizers/corpus.jsonl.gz).

Deterministic (fixed seed): running it again rewrites the same file. One JSON object per line:
{"t": "<text>"} for text, or {"hex": "<bytes>"} for byte strings that are not valid UTF-8.
Covers English, code, CJK, Cyrillic, Arabic, Hebrew, Devanagari, Thai, Greek, emoji with ZWJ
joiners, whitespace runs, CRLF, tabs, special-token text of every shipped tokenizer, very long
words, numbers, mixed scripts, apostrophe forms, control characters, NFC/NFD pairs, random
code points and invalid UTF-8.

Usage: scripts/gen_tokenizer_corpus.py [--out PATH] [--count N]
"""
import argparse
import gzip
import io
import json
import random
import sys
import unicodedata

ENGLISH = """the quick brown fox jumps over lazy dog time person year way day thing man world life
hand part child eye woman place work week case point government company number group problem fact
be have do say get make go know take see come think look want give use find tell ask seem feel try
leave call good new first last long great little own other old right big high different small large
next early young important few public bad same able to of in for on with at by from up about into
over after beneath under above the and that but or as if when than because while where after so
though whether although unless however therefore hello world tokenizer inference serving model
engine token batch cache prefix attention kernel throughput latency""".split()
CONTRACTIONS = ["don't", "I'm", "you're", "we've", "they'll", "she'd", "it's", "can't", "won't",
                "DON'T", "I'M", "YOU'RE", "They'Ll", "he'S", "isn’t", "it’s", "o'clock",
                "rock'n'roll", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'ſ", "'S", "''", "'''"]
PUNCT = list(".,;:!?-—–()[]{}\"'`~@#$%^&*_+=|\\/<>…«»“”‘’¿¡§¶•·")
CYRILLIC = "привет мир москва россия язык модель токен строка быстрый коричневый лиса прыгает через ленивую собаку Ёлка ёж Щука ЖИЗНЬ".split()
UKRAINIAN = "Україна їжак ґанок Київ слово".split()
ARABIC = "مرحبا بالعالم اللغة العربية نموذج الكتاب مدرسة القاهرة السلام عليكم شكرا جزيلا".split()
ARABIC_DIACRITIC = ["مُحَمَّد", "الْعَرَبِيَّة", "كِتَابٌ", "قُرْآن"]
HEBREW = "שלום עולם ספר מחשב ירושלים שָׁלוֹם".split()
DEVANAGARI = "नमस्ते दुनिया भारत हिन्दी भाषा क्षत्रिय श्रीमान् विद्यालय प्रौद्योगिकी संस्कृतम्".split()
THAI = ["สวัสดีครับ", "ภาษาไทย", "กรุงเทพมหานคร", "ขอบคุณ"]
GREEK = "Καλημέρα κόσμε αβγδε ΑΒΓΔΕ λόγος φιλοσοφία ΣΟΦΙΑ σοφίας".split()
VIETNAMESE = ["Tiếng Việt", "Hà Nội", "người", "đường", "Nguyễn", "thường xuyên"]
CHINESE = "我们 中国 北京 上海 人工智能 大语言模型 推理 服务 你好 世界 谢谢 今天天气很好 机器学习 深度学习".split()
JAPANESE = ["こんにちは", "ありがとう", "東京都", "カタカナ", "ひらがな", "日本語の文章です", "ラーメン", "コーヒー", "ー"]
KOREAN = ["안녕하세요", "한국어", "서울특별시", "감사합니다", "토크나이저"]
CJK_PUNCT = list("。、！？「」『』（）【】《》：；，．・〜")
EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "#️⃣",
         "❤️", "☺️", "🧑🏿‍🚀", "👁️‍🗨️", "🐕‍🦺", "🤷‍♀️", "✌🏻", "🫠", "🦀", "🐍", "⚡", "™", "©", "®"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r",
          " \n", "\n ", "\t\n", "\u00a0", "\u2003", "\u3000", "\u200b", "\u2028", "\u0085",
          "\u180e", "\u2009", "\u202f", "\u205f", "\ufeff", " \t \n", "\x0b", "\x0c"]
NUMBERS = ["0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "-273.15", "1,000,000",
           "1e-9", "0x1F", "2024-05-09", "12:30:59", "+1 (555) 123-4567", "٣٤٥", "१२३", "１２３",
           "²³", "½", "Ⅻ", "⑩", "10%", "$99.99", "€5", "¥1000", "9th", "1st", "v2.0.1", "1_000"]
SPECIAL_TEXT = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|reserved_special_token_5|>", "<|python_tag|>",
                "<|finetune_right_pad_id|>", "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>",
                "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<mask>", "[multimodal]",
                "<table>", "</td>", "<h1>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
                "<think>", "</think>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
                "<|vision_pad|>", "<|start_story|>", "<|end_story|>", "<|im_start", "im_end|>",
                "<|", "|>", "< s>", "<s >", "<|IM_START|>", "<unused42>", "<0x41>", "▁", "▁▁",
                "Ġ", "Ċ", "<|begin_of_text|><|begin_of_text|>", "<s><s></s>"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return 0; }\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "{\"key\": [1, 2, {\"nested\": null}], \"flag\": true}",
    "<div class=\"row\"><span>Hello</span></div>",
    "if [ -f \"$HOME/.bashrc\" ]; then\n  source ~/.bashrc\nfi",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}",
    "const x = (a, b) => a ?? b;  // comment\n",
    "class Foo:\r\n    def __init__(self):\r\n        self.x = 1\r\n",
    "    \n        indented\n\t\tmixed\t  tabs\n",
    "x=1;y=2;z=x+y**2//3%4",
    "import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\n",
    "git commit -m 'fix: handle CRLF'\r\n",
    "# Title\n\n- item 1\n- item 2\n\n```python\nprint('hi')\n```\n",
    "$$\\sum_{i=1}^{n} x_i^2 = \\frac{a}{b}$$",
    "https://example.com/path?q=1&r=two#frag",
    "user@example.org",
    "a_b_c __init__ snake_case camelCase PascalCase SCREAMING_CASE kebab-case",
]


def word(rng):
    pool = rng.choice([ENGLISH] * 6 + [CYRILLIC, UKRAINIAN, ARABIC, HEBREW, DEVANAGARI, GREEK,
                                        CHINESE, JAPANESE, KOREAN, THAI, VIETNAMESE, ARABIC_DIACRITIC])
    w = rng.choice(pool)
    r = rng.random()
    if r < 0.1:
        w = w.capitalize()
    elif r < 0.13:
        w = w.upper()
    return w


def sentence(rng, n=None):
    n = n or rng.randint(1, 25)
    parts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.70:
            parts.append(word(rng))
        elif r < 0.76:
            parts.append(rng.choice(CONTRACTIONS))
        elif r < 0.82:
            parts.append(rng.choice(NUMBERS))
        elif r < 0.87:
            parts.append(rng.choice(EMOJI))
        elif r < 0.93:
            parts.append(rng.choice(PUNCT))
        elif r < 0.96:
            parts.append(rng.choice(CJK_PUNCT))
        else:
            parts.append(rng.choice(SPECIAL_TEXT))
    out = ""
    for p in parts:
        r = rng.random()
        sep = " " if r < 0.8 else ("" if r < 0.9 else rng.choice(SPACES))
        out += p + sep
    if rng.random() < 0.5:
        out = out.rstrip(" ")
    return out


def random_code_point(rng):
    # Only characters assigned in Unicode 14 (Python 3.11's table), so every Unicode library in
    # the comparison (ICU, PCRE2, Rust, Oniguruma) agrees on their properties.
    while True:
        block = rng.random()
        if block < 0.5:
            cp = rng.randint(0x20, 0x2FFF)
        elif block < 0.8:
            cp = rng.randint(0x3000, 0xFFFD)
        else:
            cp = rng.randint(0x10000, 0x1FAFF)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if unicodedata.category(c) != "Cn":
            return c


def invalid_bytes(rng):
    pieces = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
              b"\xe2\x82", b"\xf0\x9f\x98", b"\x80", b"\xbf\xbf", b"\xc3", b"\xf8\x88\x80\x80\x80"]
    out = b""
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.4:
            out += rng.choice(pieces)
        elif r < 0.8:
            out += sentence(rng, rng.randint(1, 4)).encode()
        else:
            out += bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))
    return out


def generate(count, seed=20240509):
    rng = random.Random(seed)
    items = []  # str or bytes
    # Fixed edge cases first.
    items += ["", " ", "  ", "\n", "\r\n", "\t", "a", "A", "é", "e\u0301", "\u00c5", "A\u030a",
              "ﬁ", "Ǆ", "İstanbul", "ΣΑΣ", "straße", "STRASSE", "ß", "ẞ", "\u212a", "\u212b", "\u2126", "\u1fbe", "\u0390", "\x00", "\x00\x01\x1b[31mred\x1b[0m",
              "\u200d", "\u200c", "\ufe0f", "\U000e0001", "\ufffd", "\uffff", "\ufffe", "\ue000",
              "\U0010fffd", "hello\u0000world"]
    items += SPECIAL_TEXT + CODE + NUMBERS + EMOJI + SPACES
    items += [t + t for t in SPECIAL_TEXT[:20]]
    items += ["Hello" + s + "world" for s in SPECIAL_TEXT] + [s + "Hello" for s in SPECIAL_TEXT]
    items += [" " + s + " " for s in SPECIAL_TEXT] + ["\n" + s + "\n" for s in SPECIAL_TEXT]
    # Very long words and runs.
    longs = ["a" * 5000, "ab" * 3000, "x" * 257, "y" * 255, "1234567890" * 300, " " * 3000,
             "\n" * 1000, "\t" * 500, "\r\n" * 400, "😀" * 1000, "中" * 3000, "ë" * 2000,
             "e\u0301" * 1000, "-" * 4000, "=" * 1000, "Supercalifragilisticexpialidocious" * 50,
             "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8000)),
             "".join(rng.choice("абвгдеёжзийклмнопрстуфхцчшщъыьэюя") for _ in range(3000)),
             "".join(rng.choice(CHINESE) for _ in range(1500)),
             " ".join(sentence(rng) for _ in range(300)),
             "\n".join(rng.choice(CODE) for _ in range(200)),
             "".join(random_code_point(rng) for _ in range(3000)),
             "▁" * 100, "<s>" * 500, "<|im_start|>" * 200, "  " * 2000 + "x"]
    items += longs
    while len(items) < count:
        r = rng.random()
        if r < 0.45:
            items.append(sentence(rng))
        elif r < 0.55:
            items.append("\n".join(sentence(rng) for _ in range(rng.randint(2, 6))))
        elif r < 0.62:
            code = rng.choice(CODE)
            if rng.random() < 0.3:
                code = code.replace("\n", "\r\n")
            if rng.random() < 0.3:
                code = code.replace("    ", "\t")
            items.append(code + sentence(rng, 3))
        elif r < 0.67:
            items.append("".join(random_code_point(rng) for _ in range(rng.randint(1, 40))))
        elif r < 0.71:
            items.append(invalid_bytes(rng))
        elif r < 0.76:
            # NFD / NFC / NFKC forms of the same text
            s = sentence(rng, rng.randint(1, 8))
            items.append(unicodedata.normalize(rng.choice(["NFD", "NFKD", "NFC", "NFKC"]), s))
        elif r < 0.80:
            items.append(rng.choice(SPACES) * rng.randint(1, 12) + sentence(rng, 3) +
                         rng.choice(SPACES) * rng.randint(1, 12))
        elif r < 0.84:
            items.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 12))))
        elif r < 0.88:
            items.append(rng.choice(["<|im_start|>system\n", "<|start_header_id|>user<|end_header_id|>\n\n",
                                     "<start_of_turn>user\n", "[INST] ", "<s>[INST] "]) +
                         sentence(rng) + rng.choice(["<|im_end|>\n", "<|eot_id|>", "<end_of_turn>\n",
                                                     " [/INST]", "</s>"]))
        elif r < 0.92:
            items.append(" ".join(rng.choice(NUMBERS) for _ in range(rng.randint(1, 10))))
        elif r < 0.96:
            # mixed scripts inside one word
            items.append("".join(word(rng) for _ in range(rng.randint(2, 5))))
        else:
            items.append("".join(rng.choice(CONTRACTIONS + PUNCT) for _ in range(rng.randint(1, 10))))
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/tokenizers/corpus.jsonl.gz")
    ap.add_argument("--count", type=int, default=20480)
    args = ap.parse_args()
    items = generate(args.count)
    buf = io.StringIO()
    for it in items:
        if isinstance(it, bytes):
            try:
                it = it.decode("utf-8")
            except UnicodeDecodeError:
                buf.write(json.dumps({"hex": it.hex()}) + "\n")
                continue
        buf.write(json.dumps({"t": it}, ensure_ascii=False) + "\n")
    with open(args.out, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(buf.getvalue().encode("utf-8"))
    print(f"wrote {len(items)} strings to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
