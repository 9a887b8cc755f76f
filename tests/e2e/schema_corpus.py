"""JSON schemas for the structured-output tests: hand-written ones covering the features the
OpenAI API and vLLM accept (nested objects, arrays with bounds, enums, const, anyOf unions,
nullable types, recursive $ref/$defs, string length/pattern/format, integer/number bounds,
additionalProperties) and generated ones (a seeded random walk over the same features)."""

import copy
import random

HAND_WRITTEN = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
     "required": ["name", "age"]},
    {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
     "additionalProperties": False},
    {"type": "object", "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
     "required": ["score"]},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 99}},
     "required": ["n"]},
    {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
     "required": ["n"]},
    {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}},
     "required": ["color"]},
    {"type": "object", "properties": {"v": {"enum": [1, "two", None, True]}}, "required": ["v"]},
    {"type": "object", "properties": {"kind": {"const": "point"}, "x": {"type": "integer"},
                                      "y": {"type": "integer"}},
     "required": ["kind", "x", "y"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                               "minItems": 1, "maxItems": 3}},
     "required": ["tags"]},
    {"type": "object", "properties": {"matrix": {"type": "array", "items": {
        "type": "array", "items": {"type": "integer"}, "maxItems": 3}, "maxItems": 3}},
     "required": ["matrix"]},
    {"type": "object", "properties": {"value": {"anyOf": [{"type": "integer"},
                                                           {"type": "string"}]}},
     "required": ["value"]},
    {"type": "object", "properties": {"maybe": {"type": ["string", "null"]}},
     "required": ["maybe"]},
    {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}},
     "required": ["code"]},
    {"type": "object", "properties": {"word": {"type": "string", "minLength": 2, "maxLength": 5}},
     "required": ["word"]},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"}},
     "required": ["when"]},
    {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}},
     "required": ["id"]},
    # (not "email": its local part allows '}' and ']', which the closing bias of the tests
    # repeats forever on dummy weights; tests/unit/structured covers it)
    {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}},
     "required": ["at"]},
    # (not "ipv4": xgrammar's accepts octets with leading zeros, which Python's ipaddress, and
    # so jsonschema, refuses)
    {"$defs": {"node": {"type": "object", "properties": {
        "value": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
        "required": ["value", "children"]}},
     "$ref": "#/$defs/node"},
    {"$defs": {"list": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
        "head": {"type": "string"}, "tail": {"$ref": "#/$defs/list"}},
        "required": ["head", "tail"]}]}},
     "type": "object", "properties": {"items": {"$ref": "#/$defs/list"}}, "required": ["items"]},
    {"definitions": {"address": {"type": "object", "properties": {
        "street": {"type": "string"}, "city": {"type": "string"}},
        "required": ["street", "city"]}},
     "type": "object", "properties": {"home": {"$ref": "#/definitions/address"},
                                      "work": {"$ref": "#/definitions/address"}},
     "required": ["home"]},
    {"type": "object", "properties": {"user": {"type": "object", "properties": {
        "profile": {"type": "object", "properties": {"nick": {"type": "string"},
                                                     "level": {"type": "integer"}},
                    "required": ["nick", "level"]}}, "required": ["profile"]}},
     "required": ["user"]},
    {"type": "object", "properties": {"point": {"type": "array", "prefixItems": [
        {"type": "number"}, {"type": "number"}], "items": False}},
     "required": ["point"]},
    {"type": "object", "properties": {"shape": {"anyOf": [
        {"type": "object", "properties": {"kind": {"const": "circle"},
                                          "r": {"type": "number"}},
         "required": ["kind", "r"]},
        {"type": "object", "properties": {"kind": {"const": "square"},
                                          "side": {"type": "number"}},
         "required": ["kind", "side"]}]}},
     "required": ["shape"]},
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"},
                                      "c": {"type": "boolean"}, "d": {"type": "null"}},
     "required": ["a", "b", "c", "d"]},
    {"type": "object", "properties": {"opt": {"type": "string"}}},
    {"type": "object", "properties": {"meta": {"type": "object",
                                               "additionalProperties": {"type": "integer"}}},
     "required": ["meta"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4},
    {"type": "string", "enum": ["yes", "no"]},
    {"type": "integer", "minimum": -5, "maximum": 5},
    {"type": "object", "properties": {"steps": {"type": "array", "items": {
        "type": "object", "properties": {"action": {"enum": ["go", "stop"]},
                                         "count": {"type": "integer", "minimum": 1}},
        "required": ["action", "count"]}, "minItems": 1, "maxItems": 3}},
     "required": ["steps"]},
    {"type": "object", "properties": {"price": {"type": "number", "exclusiveMaximum": 100}},
     "required": ["price"]},
    {"type": "object", "properties": {"title": {"type": "string", "maxLength": 12},
                                      "year": {"type": "integer", "minimum": 1900,
                                               "maximum": 2100}},
     "required": ["title", "year"], "additionalProperties": False},
    {"$defs": {"expr": {"anyOf": [
        {"type": "integer"},
        {"type": "object", "properties": {"op": {"enum": ["+", "*"]},
                                          "args": {"type": "array",
                                                   "items": {"$ref": "#/$defs/expr"},
                                                   "minItems": 2, "maxItems": 2}},
         "required": ["op", "args"]}]}},
     "$ref": "#/$defs/expr"},
    {"type": "object", "properties": {"empty": {"type": "object", "properties": {},
                                                "additionalProperties": False}},
     "required": ["empty"]},
    {"type": "object", "properties": {"flags": {"type": "array", "items": {"type": "boolean"},
                                                "maxItems": 5}},
     "required": ["flags"]},
    {"type": "object", "properties": {"lang": {"type": "string", "enum": ["en", "fr", "de"]},
                                      "text": {"type": "string", "maxLength": 20}},
     "required": ["lang", "text"]},
    {"type": "object", "properties": {"nested": {"type": "array", "items": {"anyOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "integer"}, "maxItems": 2}]},
        "maxItems": 3}},
     "required": ["nested"]},
    # (not "time": xgrammar's allows offsets such as "+07:23" that jsonschema's checker refuses)
]


def _leaf(rng):
    kind = rng.choice(["string", "integer", "number", "boolean", "null", "enum", "bounded_int",
                       "short_string", "pattern", "nullable"])
    if kind == "enum":
        return {"enum": rng.sample(["alpha", "beta", "gamma", "delta", "eps"], rng.randint(1, 4))}
    if kind == "bounded_int":
        lo = rng.randint(-50, 50)
        return {"type": "integer", "minimum": lo, "maximum": lo + rng.randint(0, 100)}
    if kind == "short_string":
        return {"type": "string", "minLength": rng.randint(0, 2), "maxLength": rng.randint(3, 8)}
    if kind == "pattern":
        return {"type": "string", "pattern": rng.choice(["^[a-z]{2,4}$", "^[0-9]{3}$",
                                                         "^(ab|cd){1,3}$", "^x[0-9]?y$"])}
    if kind == "nullable":
        return {"type": [rng.choice(["string", "integer", "boolean"]), "null"]}
    return {"type": kind}


def _schema(rng, depth):
    r = rng.random()
    if depth >= 3 or r < 0.35:
        return _leaf(rng)
    if r < 0.55:
        return {"type": "array", "items": _schema(rng, depth + 1),
                "maxItems": rng.randint(1, 3)}
    if r < 0.65:
        return {"anyOf": [_schema(rng, depth + 1), _schema(rng, depth + 1)]}
    props = {f"p{i}_{rng.choice(['id', 'name', 'val', 'x'])}": _schema(rng, depth + 1)
             for i in range(rng.randint(1, 4))}
    names = list(props)
    out = {"type": "object", "properties": props,
           "required": rng.sample(names, rng.randint(0, len(names)))}
    if rng.random() < 0.5:
        out["additionalProperties"] = False
    return out


def generated(count, seed=2026):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        body = _schema(rng, 1)
        if body.get("type") != "object":
            body = {"type": "object", "properties": {"value": body}, "required": ["value"]}
        if i % 7 == 0:  # a recursive definition referenced from the generated object
            body = copy.deepcopy(body)
            body["$defs"] = {"tree": {"type": "object", "properties": {
                "k": _leaf(rng), "sub": {"type": "array", "items": {"$ref": "#/$defs/tree"},
                                         "maxItems": 2}}, "required": ["k", "sub"]}}
            body["properties"]["tree"] = {"$ref": "#/$defs/tree"}
        out.append(body)
    return out


def all_schemas(generated_count=180):
    return HAND_WRITTEN + generated(generated_count)
