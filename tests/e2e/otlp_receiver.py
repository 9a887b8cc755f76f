"""A minimal OTLP/HTTP trace receiver for tests: POST /v1/traces with an
ExportTraceServiceRequest in protobuf, decoded with the official opentelemetry-proto classes
(so a malformed encoding fails the test)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OtlpReceiver:
    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest, ExportTraceServiceResponse)
        self.spans = []  # (resource attributes dict, span)
        self.errors = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = (self.path == "/v1/traces" and
                      self.headers.get("Content-Type") == "application/x-protobuf")
                if ok:
                    try:
                        req = ExportTraceServiceRequest.FromString(body)
                    except Exception as e:  # noqa: BLE001 - reported to the test
                        ok = False
                        receiver.errors.append(repr(e))
                if not ok:
                    receiver.errors.append(f"bad export: {self.path} {self.headers}")
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver.cond:
                    for rs in req.resource_spans:
                        attrs = {kv.key: kv.value for kv in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                receiver.spans.append((attrs, span))
                    receiver.cond.notify_all()
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate, timeout=60):
        """Waits until predicate(spans) is true (spans arrive in batches)."""
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.spans), timeout)
