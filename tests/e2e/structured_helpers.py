"""Helpers of the structured-output and tool-calling e2e tests.

Dummy weights never learned to close a JSON string or object, so a random walk through a
grammar can run for a long time (JSON allows whitespace between tokens, and a vocabulary has
hundreds of whitespace tokens). A logit bias on the structural tokens that end things ('"', '}',
']'), on the separators (',', ':') and against pure-whitespace tokens makes the walk finish
quickly, while the grammar mask keeps every output valid: this tests exactly what the engine
promises (validity whatever the logits say), within CI's time."""

import json
import os

from tokenizers import Tokenizer


def closing_bias(model_dir):
    """{token id: bias}: +40 for '"' (a string closes as soon as it may), +30 for '}', ']' and the EOS ids (a
    complete output, e.g. a top-level number, then ends), +20 for ',' and ':', -100 for every
    token that decodes to whitespace only."""
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    bias = {}
    for tid in range(tok.get_vocab_size(with_added_tokens=True)):
        text = tok.decode([tid], skip_special_tokens=False)
        if text and not text.strip():
            bias[str(tid)] = -100
    for piece, value in (('"', 40), ("}", 30), ("]", 30), (",", 20), (":", 20)):
        tid = tok.token_to_id(piece)
        if tid is not None:
            bias[str(tid)] = value
    with open(os.path.join(model_dir, "config.json")) as f:
        eos = json.load(f).get("eos_token_id")
    with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
        eos_token = json.load(f).get("eos_token")
    eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
    if isinstance(eos_token, str) and tok.token_to_id(eos_token) is not None:
        eos_ids.append(tok.token_to_id(eos_token))
    for tid in eos_ids:
        bias[str(tid)] = 30
    return bias


def token_id(model_dir, piece):
    return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).token_to_id(piece)


def check_valid(schema, text):
    """Parses `text` and validates it against `schema` (formats checked where jsonschema can)."""
    import jsonschema

    value = json.loads(text)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    return value
