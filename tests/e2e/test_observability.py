"""Operations: OpenTelemetry traces of requests (--otlp-traces-endpoint) received by an OTLP/HTTP
receiver built on the official protobuf classes, W3C traceparent propagation, and JSON logs with
request ids (--log-format json)."""

import json
import os
import time

import pytest

from kite_server import KITE, TINY, KiteServer

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver():
    pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    from otlp_receiver import OtlpReceiver
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced_server(receiver, tmp_path_factory):
    server = KiteServer(TINY, "--kv-cache-memory", "64MiB", "--served-model-name", "tiny",
                        "--otlp-traces-endpoint", receiver.endpoint, "--log-format", "json",
                        log_dir=str(tmp_path_factory.mktemp("traced")), name="traced").start()
    yield server
    assert server.stop() == 0, server.log()[-3000:]


def test_request_trace_has_queue_prefill_decode_spans(traced_server, receiver):
    status, headers, _ = traced_server.post(
        "/v1/completions", {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 8},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01", "X-Request-Id": "req-trace-1"})
    assert status == 200
    assert headers.get("X-Request-Id") == "req-trace-1"

    def of_trace(spans):
        return [s for _, s in spans if s.trace_id.hex() == TRACE_ID]

    assert receiver.wait_for(lambda spans: len(of_trace(spans)) >= 5), receiver.errors
    assert not receiver.errors
    spans = {s.name: s for s in of_trace(receiver.spans)}
    assert set(spans) == {"POST /v1/completions", "llm_request", "queue", "prefill", "decode"}
    server = spans["POST /v1/completions"]
    assert server.parent_span_id.hex() == PARENT  # continues the caller's trace
    assert server.kind == server.SPAN_KIND_SERVER
    req = spans["llm_request"]
    assert req.parent_span_id == server.span_id
    for phase in ("queue", "prefill", "decode"):
        assert spans[phase].parent_span_id == req.span_id
        assert spans[phase].start_time_unix_nano <= spans[phase].end_time_unix_nano
    assert spans["queue"].end_time_unix_nano == spans["prefill"].start_time_unix_nano
    assert spans["prefill"].end_time_unix_nano == spans["decode"].start_time_unix_nano
    assert server.start_time_unix_nano <= req.start_time_unix_nano
    assert req.end_time_unix_nano <= server.end_time_unix_nano
    attrs = {kv.key: kv.value for kv in req.attributes}
    assert attrs["gen_ai.usage.completion_tokens"].int_value == 8
    assert attrs["gen_ai.usage.prompt_tokens"].int_value > 0
    assert attrs["gen_ai.latency.time_to_first_token"].double_value > 0
    resource = [a for a, s in receiver.spans if s.trace_id.hex() == TRACE_ID][0]
    assert resource["service.name"].string_value == "kite"

    # A request without traceparent starts its own trace; streaming chat is traced too.
    before = {s.trace_id for _, s in receiver.spans}
    status, _, _ = traced_server.post(
        "/v1/completions", {"model": "tiny", "prompt": "A cat", "max_tokens": 2, "stream": True})
    assert status == 200
    assert receiver.wait_for(
        lambda spans: any(s.trace_id not in before and s.name == "decode" for _, s in spans))


def json_records(server, until, timeout=30):
    """The server's log lines as JSON objects, once until(records) holds (the line of a request
    is written just after its response)."""
    deadline = time.monotonic() + timeout
    while True:
        records = [json.loads(line) for line in server.log().splitlines()
                   if line.startswith("{")]  # every log line is one JSON object
        if until(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_json_logs_carry_request_ids(traced_server):
    status, _, _ = traced_server.post(
        "/v1/completions", {"model": "tiny", "prompt": "Hello", "max_tokens": 3},
        headers={"X-Request-Id": "req-log-42"})
    assert status == 200
    records = json_records(traced_server,
                           lambda rs: any(r.get("request_id") == "req-log-42" for r in rs))
    assert all({"time", "level", "message"} <= set(r) for r in records)
    assert any(r["message"].startswith("serving tiny") for r in records)
    mine = [r for r in records if r.get("request_id") == "req-log-42"]
    assert len(mine) == 1, records[-5:]
    r = mine[0]
    assert r["message"] == "request finished" and r["level"] == "info"
    assert r["route"] == "/v1/completions" and r["status"] == 200
    assert r["generation_tokens"] == 3 and r["prompt_tokens"] > 0
    assert r["engine_request_id"].startswith("cmpl-")
    assert len(r["trace_id"]) == 32
    # Without X-Request-Id the engine request's id is the request id.
    status, _, _ = traced_server.post("/v1/completions",
                                      {"model": "tiny", "prompt": "Hi", "max_tokens": 1})
    assert status == 200
    records = json_records(traced_server, lambda rs: rs[-1].get("generation_tokens") == 1)
    last = records[-1]
    assert last["message"] == "request finished" and last["generation_tokens"] == 1
    assert last["request_id"] == last["engine_request_id"]
