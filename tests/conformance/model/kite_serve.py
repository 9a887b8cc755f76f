"""`kite serve` as a subprocess for the transformers_*_check.py scripts (which run where torch
is, outside pytest's fixtures): start on a free port, wait for /health, post JSON, stop."""

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def kite_serve(kite_bin, args, log_path, ready_s=300):
    """Runs `kite_bin serve *args --host 127.0.0.1 --port P`; yields its base URL once /health
    answers 200, and stops it (SIGTERM, then kill) afterwards."""
    port = free_port()
    cmd = [kite_bin, "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kite serve exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kite serve did not become healthy; see {log_path}")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url, body, timeout=120):
    """(status, parsed JSON body) of a JSON POST; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def report(failures, ok_text="OK"):
    """Prints the failures (exit status 1) or ok_text (0)."""
    if failures:
        print("MISMATCH:\n  " + "\n  ".join(failures))
        return 1
    print(ok_text)
    return 0
