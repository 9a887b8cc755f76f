"""Oracle for the chat-template parity test: renders every template of
tests/data/chat_templates/manifest.json over every conversation of conversations.json, with
add_generation_prompt false and true, through transformers' apply_chat_template(tokenize=False),
and writes the results as JSON for chat_template_parity_test.

Templates given as tokenizer_config.json(.gz) are loaded the way transformers does: a fast
tokenizer is built with the config's fields (chat_template and special tokens); a tiny stand-in
vocabulary replaces tokenizer.json, which rendering with tokenize=False never touches. Templates
given as .jinja files get the special tokens the manifest lists.

Usage: chat_template_oracle.py DATA_DIR OUT_JSON
"""

import gzip
import json
import os
import sys

from oracle_common import describe_error  # also pins datetime.now()

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast


def load_json(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def make_tokenizer(data_dir, entry):
    stand_in = Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    if "tokenizer_config" in entry:
        config = load_json(os.path.join(data_dir, entry["tokenizer_config"]))
        kwargs = {k: v for k, v in config.items()
                  if k not in ("added_tokens_decoder", "tokenizer_class", "auto_map")}
        return PreTrainedTokenizerFast(tokenizer_object=stand_in, **kwargs)
    with open(os.path.join(data_dir, entry["template"]), encoding="utf-8", newline="") as f:
        source = f.read()
    return PreTrainedTokenizerFast(tokenizer_object=stand_in, chat_template=source,
                                   **entry.get("special_tokens", {}))


def main():
    data_dir, out_path = sys.argv[1], sys.argv[2]
    manifest = load_json(os.path.join(data_dir, "manifest.json"))
    conversations = load_json(os.path.join(data_dir, "conversations.json"))
    tool_sets = conversations["tool_sets"]
    out = {"templates": []}
    total = 0
    for entry in manifest["templates"]:
        tok = make_tokenizer(data_dir, entry)
        record = {"name": entry["name"], "source": tok.chat_template,
                  "special_tokens": dict(tok.special_tokens_map), "results": []}
        for conv in conversations["conversations"]:
            tools = conv.get("tools")
            if isinstance(tools, str):
                tools = tool_sets[tools]
            for add_generation_prompt in (False, True):
                result = {"conversation": conv["name"],
                          "add_generation_prompt": add_generation_prompt}
                try:
                    result["output"] = tok.apply_chat_template(
                        conv["messages"], tools=tools, add_generation_prompt=add_generation_prompt,
                        tokenize=False, **conv.get("kwargs", {}))
                    result["ok"] = True
                except Exception as exc:  # noqa: BLE001 - template errors are expected outcomes
                    result["ok"] = False
                    result["category"], result["error"] = describe_error(exc)
                record["results"].append(result)
                total += 1
        out["templates"].append(record)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(f"{total} renders of {len(out['templates'])} templates written to {out_path}")


if __name__ == "__main__":
    main()
