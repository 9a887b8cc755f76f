"""Oracle for the interpreter parity test: renders every case of interpreter_cases.txt with
jinja2 (as transformers configures it) and writes the results as JSON for jinja_parity_test.

Case file format (one case after another):
    === case_name
    --- context            (optional; a JSON object of template variables)
    {"x": 1}
    --- template
    template text up to the next "===" line (the newline before it is not part of the template)

Usage: jinja_oracle.py CASES_TXT OUT_JSON
"""

import json
import os
import sys

from oracle_common import compile_template, describe_error


def read_cases(path):
    cases = []
    current = None
    section = None
    lines = []

    def flush():
        if current is None:
            return
        text = "\n".join(lines)
        if section == "context":
            current["context"] = json.loads(text) if text.strip() else {}
        elif section == "template":
            current["template"] = text

    with open(path, encoding="utf-8", newline="") as f:
        for raw in f.read().split("\n"):
            if raw.startswith("=== "):
                flush()
                current = {"name": raw[4:].strip(), "context": {}}
                cases.append(current)
                section, lines = None, []
            elif raw in ("--- context", "--- template") and section != "template":
                flush()
                section, lines = raw[4:], []
            else:
                lines.append(raw)
        flush()
    for case in cases:
        if "template" not in case:
            raise SystemExit(f"case {case['name']} has no template")
    names = [c["name"] for c in cases]
    if len(names) != len(set(names)):
        raise SystemExit("duplicate case names")
    return cases


def main():
    cases_path, out_path = sys.argv[1], sys.argv[2]
    results = []
    for case in read_cases(cases_path):
        entry = {"name": case["name"], "template": case["template"], "context": case["context"]}
        try:
            entry["output"] = compile_template(case["template"]).render(**case["context"])
            entry["ok"] = True
        except Exception as exc:  # noqa: BLE001 - every template error is an expected outcome
            entry["ok"] = False
            entry["category"], entry["error"] = describe_error(exc)
        results.append(entry)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"cases": results}, f, ensure_ascii=False, indent=1)
    print(f"{len(results)} cases written to {out_path}")


if __name__ == "__main__":
    main()
