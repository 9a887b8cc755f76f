"""`kite serve --ssl-keyfile/--ssl-certfile` (docs/serving.md, "HTTPS"): the official openai
client over TLS, plain HTTP on the TLS port, a stalled handshake, bad key files and client
certificates. Certificates are made here with the openssl CLI (a throwaway CA)."""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error

import httpx
import pytest
from openai import OpenAI

from kite_server import KITE, TINY, KiteServer, free_port, http

pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(d, name, ca, ext):
    """A P-256 key and a certificate for `name` signed by the CA, with the extensions `ext`."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext + "\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
                "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
            cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=kite test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    issue(d, "server", "ca", "subjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature\n"
          "extendedKeyUsage=serverAuth")
    issue(d, "client", "ca", "keyUsage=digitalSignature\nextendedKeyUsage=clientAuth")
    return {k: os.path.join(d, k) for k in ("ca.pem", "server.pem", "server.key", "client.pem",
                                              "client.key")} | {"dir": d}


def client_context(certs, with_client_cert=False):
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    if with_client_cert:
        ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
    return ctx


@pytest.fixture(scope="module")
def tls_server(certs, chat_model_dirs, tmp_path_factory):
    server = KiteServer(chat_model_dirs["llama3.1"], "--load-format", "dummy", "--max-model-len",
                        "512", "--kv-cache-memory", "32MiB", "--read-timeout", "1",
                        "--ssl-keyfile", certs["server.key"], "--ssl-certfile",
                        certs["server.pem"], tls_context=client_context(certs),
                        log_dir=str(tmp_path_factory.mktemp("tls-log")), name="tls").start()
    yield server
    assert server.stop() == 0, server.log()[-4000:]


def test_the_openai_client_chats_over_https(tls_server, certs):
    assert "listening on https://" in tls_server.log()
    client = OpenAI(base_url=tls_server.url + "/v1", api_key="x", max_retries=0,
                    http_client=httpx.Client(verify=client_context(certs)))
    model = os.path.basename(tls_server.model)
    messages = [{"role": "user", "content": "Hello"}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                           temperature=0, extra_body={"ignore_eos": True})
    assert whole.usage.completion_tokens == 8
    chunks = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                            temperature=0, stream=True,
                                            extra_body={"ignore_eos": True})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content


def test_the_client_must_trust_the_certificate(tls_server):
    with pytest.raises(urllib.error.URLError) as e:
        http("GET", tls_server.url + "/health", context=ssl.create_default_context())
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)


def test_plain_http_on_the_tls_port_gets_a_clean_400(tls_server):
    s, h, body = http("GET", f"http://127.0.0.1:{tls_server.port}/health")
    assert s == 400 and h["Connection"] == "close"
    err = json.loads(body)["error"]
    assert "HTTPS" in err["message"] and err["code"] == "bad_request"
    s, _, _ = tls_server.get("/health")
    assert s == 200


def test_a_stalled_handshake_is_closed_after_the_read_timeout(tls_server):
    # Half a ClientHello, then nothing: the server closes the connection (--read-timeout 1)
    # and serves everyone else meanwhile.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")
        s, _, _ = tls_server.get("/health")
        assert s == 200
        try:
            assert sock.recv(1024) == b""  # EOF (a timeout would raise instead)
        except ConnectionResetError:
            pass


def test_a_client_hello_in_small_pieces_still_completes(tls_server, certs):
    # The server reads the first TLS record whole before starting TLS; pieces of it arriving
    # one by one must add up (a handshake through a memory BIO, its bytes sent one at a time).
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs).wrap_bio(inc, out, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = out.read()
                if first:
                    for i in range(len(data)):
                        sock.sendall(data[i:i + 1])
                    first = False
                else:
                    sock.sendall(data)
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection during the handshake"
                inc.write(chunk)
        sock.sendall(out.read())
        tls.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.sendall(out.read())
        response = b""
        while True:
            try:
                response += tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                inc.write(chunk)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
    assert response.startswith(b"HTTP/1.1 200"), response


def run_serve(*args):
    port = free_port()
    return subprocess.run([KITE, "serve", TINY, "--host", "127.0.0.1", "--port", str(port),
                           *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", ["missing", "garbage", "wrong-key", "key-only", "reqs-no-ca"])
def test_bad_tls_files_exit_with_a_message(certs, tmp_path, case):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    args, want = {
        "missing": (["--ssl-keyfile", str(tmp_path / "no.key"), "--ssl-certfile",
                     certs["server.pem"]], "cannot use --ssl-keyfile"),
        "garbage": (["--ssl-keyfile", certs["server.key"], "--ssl-certfile", str(garbage)],
                    "cannot use --ssl-certfile"),
        "wrong-key": (["--ssl-keyfile", certs["client.key"], "--ssl-certfile",
                       certs["server.pem"]], "key values mismatch"),
        "key-only": (["--ssl-keyfile", certs["server.key"]], "needs both"),
        "reqs-no-ca": (["--ssl-keyfile", certs["server.key"], "--ssl-certfile",
                        certs["server.pem"], "--ssl-cert-reqs", "2"], "needs --ssl-ca-certs"),
    }[case]
    r = run_serve(*args)
    assert r.returncode != 0
    assert want in r.stderr, r.stderr


def test_client_certificates_when_required(certs, tmp_path):
    server = KiteServer(TINY, "--kv-cache-memory", "32MiB", "--ssl-keyfile", certs["server.key"],
                        "--ssl-certfile", certs["server.pem"], "--ssl-ca-certs", certs["ca.pem"],
                        "--ssl-cert-reqs", "2",
                        tls_context=client_context(certs, with_client_cert=True),
                        log_dir=str(tmp_path), name="mtls").start()
    try:
        s, _, _ = server.get("/health")
        assert s == 200
        client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0,
                        http_client=httpx.Client(verify=client_context(certs, True)))
        out = client.completions.create(model="tinystories-656k", prompt="Once", max_tokens=4)
        assert out.usage.completion_tokens == 4
        # No client certificate: the handshake fails (TLS 1.3 reports it on the first read).
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            http("GET", server.url + "/health", context=client_context(certs), timeout=30)
        s, _, _ = server.get("/health")
        assert s == 200
    finally:
        assert server.stop() == 0, server.log()[-4000:]
