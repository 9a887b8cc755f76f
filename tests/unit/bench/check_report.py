"""Checks a kite bench report with Python's own parsers (not ours):
  - the HTML parses with html.parser and its tags balance;
  - every inline <svg> is well-formed XML (xml.etree) with the chart structure we promise:
    a title, axis labels, one <g class="series" data-name=...> per series;
  - the charts named in the expectations exist with exactly those series and axis labels;
  - the Markdown table has a header, a separator and rows of the same width;
  - every result JSON file parses with the json module and has the schema's keys.
Usage: check_report.py EXPECT.json REPORT.html TABLE.md RESULT.json...
Prints "OK" and exits 0, or prints what is wrong and exits 1."""
import html.parser
import json
import sys
import xml.etree.ElementTree as ET

SVG_NS = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "br", "hr", "img", "input", "link"}


class Balance(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
        self.errors = []
        self.svg_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()


def svgs(text):
    out, pos = [], 0
    while True:
        a = text.find("<svg", pos)
        if a < 0:
            return out
        b = text.find("</svg>", a)
        out.append(text[a:b + 6])
        pos = b + 6


def chart_info(root):
    title = root.find(f"{SVG_NS}title")
    labels = {}
    for axis in ("x-axis", "y-axis"):
        g = root.find(f".//{SVG_NS}g[@class='axis {axis}']")
        lab = None if g is None else g.find(f"{SVG_NS}text[@class='axis-label']")
        labels[axis] = None if lab is None else (lab.text or "")
    series = [g.get("data-name") for g in root.iter(f"{SVG_NS}g") if g.get("class") == "series"]
    refs = [g.get("data-label") for g in root.iter(f"{SVG_NS}g") if g.get("class") == "ref-line"]
    hl = [g.get("data-label") for g in root.iter(f"{SVG_NS}g") if g.get("class") == "highlight"]
    marks = sum(1 for _ in root.iter(f"{SVG_NS}circle")) + sum(
        1 for _ in root.iter(f"{SVG_NS}polyline")) + sum(
        1 for r in root.iter(f"{SVG_NS}rect") if r.get("class") != "background")
    return {"title": None if title is None else title.text, "x_label": labels["x-axis"],
            "y_label": labels["y-axis"], "series": series, "ref_lines": refs,
            "highlights": hl, "marks": marks, "kind": root.get("data-kind")}


def main():
    expect = json.load(open(sys.argv[1]))
    text = open(sys.argv[2], encoding="utf-8").read()
    md = open(sys.argv[3], encoding="utf-8").read()
    errors = []

    p = Balance()
    p.feed(text)
    p.close()
    errors += p.errors
    if p.stack:
        errors.append(f"unclosed tags: {p.stack}")

    charts = {}
    for s in svgs(text):
        try:
            root = ET.fromstring(s)
        except ET.ParseError as e:
            errors.append(f"SVG is not well-formed XML: {e}")
            continue
        info = chart_info(root)
        if not info["title"]:
            errors.append("an SVG has no <title>")
        if info["kind"] == "line" and (not info["x_label"] or not info["y_label"]):
            errors.append(f"chart {info['title']!r} lacks an axis label")
        if info["kind"] == "bar" and not info["y_label"]:
            errors.append(f"chart {info['title']!r} lacks a y-axis label")
        if info["series"] and info["marks"] == 0:
            errors.append(f"chart {info['title']!r} has series but draws nothing")
        charts[info["title"]] = info

    for title, want in expect.get("charts", {}).items():
        got = charts.get(title)
        if got is None:
            errors.append(f"missing chart {title!r}; have {sorted(charts)}")
            continue
        for key in ("x_label", "y_label"):
            if key in want and got[key] != want[key]:
                errors.append(f"chart {title!r}: {key} {got[key]!r} != {want[key]!r}")
        if "series" in want and sorted(got["series"]) != sorted(want["series"]):
            errors.append(f"chart {title!r}: series {got['series']} != {want['series']}")
        for ref in want.get("ref_lines", []):
            if ref not in got["ref_lines"]:
                errors.append(f"chart {title!r}: no reference line {ref!r} in {got['ref_lines']}")
        for hl in want.get("highlights", []):
            if hl not in got["highlights"]:
                errors.append(f"chart {title!r}: no highlight {hl!r} in {got['highlights']}")
    if "num_charts" in expect and len(charts) != expect["num_charts"]:
        errors.append(f"{len(charts)} charts, expected {expect['num_charts']}: {sorted(charts)}")
    for needle in expect.get("html_contains", []):
        if needle not in text:
            errors.append(f"HTML lacks {needle!r}")

    rows = [l for l in md.splitlines() if l.startswith("|")]
    if len(rows) < 3:
        errors.append("Markdown table has fewer than 3 lines")
    else:
        width = rows[0].count("|")
        if not set(rows[1].replace("|", "").split()) <= {"---", "---:"}:
            errors.append(f"bad Markdown separator row {rows[1]!r}")
        first_table = []
        for r in rows:
            if r.count("|") != width:
                break
            first_table.append(r)
        for r in first_table:
            if r.count("|") != width:
                errors.append(f"Markdown row width differs: {r!r}")
        for needle in expect.get("md_rows", []):
            if not any(needle in r for r in rows):
                errors.append(f"no Markdown row mentions {needle!r}")

    for path in sys.argv[4:]:
        r = json.load(open(path))
        for key in ("schema", "kind", "label", "environment", "tool"):
            if key not in r:
                errors.append(f"{path}: no {key!r}")
        if not str(r.get("schema", "")).startswith("kite-bench/"):
            errors.append(f"{path}: schema {r.get('schema')!r}")

    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"OK: {len(charts)} charts")


if __name__ == "__main__":
    main()
