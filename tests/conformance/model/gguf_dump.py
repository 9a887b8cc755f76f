"""Dumps a GGUF file's metadata and tensor infos as the `gguf` package reads them (JSON), for
comparison with kite's parser.

Usage: gguf_dump.py FILE.gguf OUT.json
Each key: {"type": "UINT32" | ... | "ARRAY", "elem": element type for arrays, "value": scalar,
string, or list (nested arrays as lists)}; tensors: [{"name", "type", "shape" (row-major),
"abs_offset" (from the start of the file)}].
"""

import json
import sys

from gguf import GGUFReader, GGUFValueType


def field_value(field):
    t = field.types[0]
    if t == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", errors="surrogateescape")
    if t != GGUFValueType.ARRAY:
        return field.parts[field.data[0]].tolist()[0]
    elem = field.types[1] if len(field.types) > 1 else None
    if elem == GGUFValueType.STRING:
        return [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]
    if elem == GGUFValueType.ARRAY:
        return None  # nested: compared by count only
    return [field.parts[i].tolist()[0] for i in field.data]


def main():
    r = GGUFReader(sys.argv[1])
    out = {"metadata": {}, "tensors": []}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        entry = {"type": field.types[0].name, "value": field_value(field)}
        if field.types[0] == GGUFValueType.ARRAY:
            entry["elem"] = field.types[1].name if len(field.types) > 1 else None
            entry["count"] = len(field.data)
        out["metadata"][name] = entry
    for t in r.tensors:
        out["tensors"].append({"name": t.name, "type": int(t.tensor_type),
                               "shape": [int(x) for x in reversed(t.shape.tolist())],
                               "abs_offset": int(t.data_offset)})
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
