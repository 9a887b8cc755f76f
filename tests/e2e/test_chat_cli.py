"""`kite chat`, driven in a pseudo-terminal (pexpect): a conversation of three turns (one of them
multi-line) whose prompts equal transformers' rendering of the chat template, /system, /clear,
/save, Ctrl-C stopping a reply without leaving, and `kite chat --url` against a server."""

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kite_server import KITE, KiteServer, make_chat_model_dir

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.skipif(not os.path.exists(KITE), reason=f"no kite binary at {KITE}")

PROMPT = ">>> "


def spawn(args, log=None, env=None):
    cmd = " ".join([KITE, *args]) + (f" 2>{log}" if log else "")
    child = pexpect.spawn("/bin/bash", ["-c", cmd], encoding="utf-8", timeout=120,
                          env=env or dict(os.environ), dimensions=(40, 200))
    child.expect_exact(PROMPT)
    return child


def say(child, text):
    child.sendline(text)
    child.expect_exact(PROMPT)
    return child.before


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_chat_model_dir("qwen3", str(tmp_path_factory.mktemp("chat") / "qwen3"))


def test_three_turns_render_like_transformers(model_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    log = tmp_path / "chat.log"
    saved = tmp_path / "conversation.json"
    child = spawn(["chat", model_dir, "--load-format", "dummy", "--max-model-len", "1024",
                   "--kv-cache-memory", "64MiB", "--max-tokens", "6", "--temperature", "0",
                   "--log-level", "debug"], log=log)
    assert "(system prompt set)" in say(child, "/system You answer briefly.")
    say(child, "Hello, who are you?")
    child.sendline('"""')  # a multi-line message
    child.expect_exact("... ")
    child.sendline("First line")
    child.expect_exact("... ")
    child.sendline("second line")
    child.expect_exact("... ")
    say(child, '"""')
    child.sendline("Last one \\")  # a line continued on the next
    child.expect_exact("... ")
    say(child, "really.")
    assert "(saved to" in say(child, f"/save {saved}")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    with open(saved) as f:
        messages = json.load(f)["messages"]
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3
    assert messages[0]["content"] == "You answer briefly."
    assert messages[1]["content"] == "Hello, who are you?"
    assert messages[3]["content"] == "First line\nsecond line"
    assert messages[5]["content"] == "Last one \nreally."
    prompts = [json.loads(m.group(1)) for m in
               re.finditer(r"chat prompt: (\".*\")$", log.read_text(), re.MULTILINE)]
    assert len(prompts) == 3
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    for turn, prompt in enumerate(prompts):
        history = messages[: 2 + 2 * turn]  # system + the turns before + this user message
        expected = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
        assert prompt == expected, f"turn {turn + 1}"


def test_clear_and_ctrl_c_stop_a_reply(model_dir, tmp_path):
    log = tmp_path / "chat.log"
    saved = tmp_path / "after.json"
    child = spawn(["chat", model_dir, "--load-format", "dummy", "--max-model-len", "2048",
                   "--kv-cache-memory", "64MiB", "--max-tokens", "2000", "--ignore-eos",
                   "--temperature", "1", "--log-level", "debug"], log=log)
    say(child, "A first question")
    assert "(conversation cleared)" in say(child, "/clear")
    child.sendline("Tell me a very long story")
    child.expect_exact("Tell me a very long story\r\n")  # the terminal's echo of the line
    child.expect(r"\S")  # the reply has begun streaming (so kite has read the line)
    child.sendintr()     # Ctrl-C
    child.expect_exact("(stopped)")
    child.expect_exact(PROMPT)
    assert child.isalive()
    say(child, f"/save {saved}")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    with open(saved) as f:
        messages = json.load(f)["messages"]
    # /clear forgot the first turn; the stopped reply is kept as far as it went.
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "Tell me a very long story"
    # Ctrl-C at the prompt does not leave either.
    child = spawn(["chat", model_dir, "--load-format", "dummy", "--kv-cache-memory", "64MiB"])
    child.sendintr()
    child.expect_exact("/bye to leave")
    child.sendline("/bye")
    child.expect(pexpect.EOF)


def test_chat_url_against_kite_serve(model_dir, tmp_path):
    server = KiteServer(model_dir, "--load-format", "dummy", "--max-model-len", "1024",
                        "--kv-cache-memory", "64MiB", "--served-model-name", "q3",
                        "--log-format", "json", log_dir=str(tmp_path), name="chat-url").start()
    try:
        saved = tmp_path / "url.json"
        child = spawn(["chat", "--url", server.url, "--max-tokens", "5", "--temperature", "0"])
        assert "q3 at " in child.before
        first = say(child, "Hi there")
        second = say(child, "And again")
        say(child, f"/save {saved}")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
        with open(saved) as f:
            messages = json.load(f)["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["Hi there", "And again"]
        for reply, shown in zip([m["content"] for m in messages if m["role"] == "assistant"],
                                (first, second)):
            assert reply and reply.strip() in shown.replace("\r\n", "\n")
        # One request per turn, each with the whole history.
        records = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
        finished = [r for r in records if r.get("route") == "/v1/chat/completions"]
        assert len(finished) == 2
    finally:
        server.stop()


class SlowServer:
    """An OpenAI-compatible chat server whose reply never ends: Ctrl-C must stop it."""

    def __init__(self):
        self.disconnected = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body = json.dumps({"object": "list", "data": [{"id": "slow"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                chunk = {"choices": [{"index": 0, "delta": {"content": "word "}}]}
                try:
                    while True:
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if outer.disconnected.wait(0.05):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    outer.disconnected.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_chat_url_ctrl_c_stops_an_endless_reply():
    slow = SlowServer()
    child = spawn(["chat", "--url", slow.url])
    child.sendline("go")
    child.expect_exact("word word ")
    child.sendintr()
    child.expect_exact("(stopped)")
    child.expect_exact(PROMPT)
    assert slow.disconnected.wait(30)  # the stream was closed, not left running
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    slow.server.shutdown()
