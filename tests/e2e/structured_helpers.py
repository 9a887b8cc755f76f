"""Helpers of the structured-output and tool-calling e2e tests.

Dummy weights never learned to close a JSON string or object, so a random walk through a
grammar can run for a long time. A logit bias on the structural tokens that end things ('"',
'}', ']') and on the separators (',', ':') makes the walk finish quickly, while the grammar mask
keeps every output valid: this tests exactly what the engine promises (validity whatever the
logits say), within CI's time."""

import json
import os

from tokenizers import Tokenizer


def closing_bias(model_dir):
    """{token id: bias} for the model's single-character tokens '"', '}', ']', ',', ':'."""
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    bias = {}
    for piece, value in (('"', 30), ("}", 30), ("]", 30), (",", 20), (":", 20)):
        tid = tok.token_to_id(piece)
        if tid is not None:
            bias[str(tid)] = value
    return bias


def token_id(model_dir, piece):
    return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).token_to_id(piece)


def check_valid(schema, text):
    """Parses `text` and validates it against `schema` (formats checked where jsonschema can)."""
    import jsonschema

    value = json.loads(text)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    return value
