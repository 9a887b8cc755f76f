"""deploy/grafana/kite-dashboard.json: a Grafana dashboard that loads (the JSON model Grafana
imports) and whose every query parses as PromQL (promql-parser, Prometheus' grammar) and names
only metrics a running kite serve exports at /metrics."""

import json
import os

import pytest

from kite_server import ROOT

DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "kite-dashboard.json")


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def selector_names(node, out):
    """Metric names of every vector selector under a promql_parser node."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        if node.name:
            out.add(node.name)
        for m in node.matchers.matchers if hasattr(node.matchers, "matchers") else []:
            if m.name == "__name__":
                out.add(m.value)
        return
    for attr in ("args", "expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is None:
            continue
        for c in (child if isinstance(child, (list, tuple)) else [child]):
            if type(c).__module__.startswith("promql_parser"):
                selector_names(c, out)


def exported_names(metrics_text):
    """Series names /metrics can produce: every family, with _bucket/_sum/_count for
    histograms and summaries."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind in ("histogram", "summary"):
                names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


def test_dashboard_is_a_grafana_model():
    d = load()
    assert d["title"] and d["uid"] and isinstance(d["schemaVersion"], int)
    assert {v["name"] for v in d["templating"]["list"]} >= {"DS_PROMETHEUS", "instance"}
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["type"] == "timeseries" and p["targets"], p["title"]
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
        for t in p["targets"]:
            assert t["expr"] and t["refId"] and t["datasource"]["uid"] == "${DS_PROMETHEUS}"


def test_every_query_names_an_exported_metric(tiny_server):
    promql_parser = pytest.importorskip("promql_parser")
    status, _, _ = tiny_server.post("/v1/completions",
                                    {"prompt": "Once upon a time", "max_tokens": 4})
    assert status == 200
    status, _, body = tiny_server.get("/metrics")
    assert status == 200
    exported = exported_names(body.decode())
    used = set()
    d = load()
    queries = [t["expr"] for p in d["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in d["templating"]["list"] if v.get("definition")]
    for expr in queries:
        # Grafana's interval variables are not PromQL; label_values() is Grafana's function.
        text = expr.replace("$__rate_interval", "5m")
        if text.startswith("label_values("):
            text = text[len("label_values("):text.rindex(",")]
        names = set()
        selector_names(promql_parser.parse(text), names)
        assert names, expr
        missing = names - exported
        assert not missing, f"{expr}: not exported by kite serve: {missing}"
        used |= names
    # The panels the operators asked for.
    for metric in ("kite:generation_tokens_total", "kite:time_to_first_token_seconds_bucket",
                   "kite:time_per_output_token_seconds_bucket",
                   "kite:e2e_request_latency_seconds_bucket", "kite:num_requests_waiting",
                   "kite:kv_cache_usage_perc", "kite:prefix_cache_hits_total",
                   "kite:num_preemptions_total"):
        assert metric in used, metric
