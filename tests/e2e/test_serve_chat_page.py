"""The chat page kite serves at `/`, driven in headless Chromium (Debian's `chromium` through
playwright): type a message, watch the reply arrive in several pieces, save a screenshot into
the test's tmp dir (its path is printed; run pytest with -s to see it)."""

import os
import shutil

import pytest
from openai import OpenAI

CHROMIUM = os.environ.get("KITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")

# Records every state the assistant's text passed through, from the mutation records themselves:
# the page sets the text once per streamed event (`textContent +=`, a new text node each time),
# and each record keeps its node, so every state is seen however many events one network read
# or one observer callback delivers (the states do not depend on timing).
WATCH = """
window.__pieces = [];
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.type === 'characterData' ? r.target.parentElement : r.target;
    if (!el || !el.matches || !el.matches('.msg.assistant .text')) continue;
    if (r.type === 'characterData') {
      window.__pieces.push(r.target.data);
    } else {
      for (const n of r.addedNodes) window.__pieces.push(n.textContent);
    }
  }
}).observe(document.getElementById('messages'),
           {subtree: true, childList: true, characterData: true});
"""


def drive(url, message, screenshot, temperature=None):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            sync_api.expect(page.locator("#model")).not_to_have_text("loading…", timeout=10_000)
            model = page.locator("#model").inner_text()
            mode = page.locator("#mode").input_value()
            page.fill("#max-tokens", "48")
            if temperature is not None:
                page.fill("#temperature", str(temperature))
            page.evaluate(WATCH)
            page.fill("#prompt", message)
            page.press("#prompt", "Enter")
            page.wait_for_selector(".msg.assistant.done", timeout=60_000)
            sync_api.expect(page.locator("#status")).to_contain_text("done in", timeout=10_000)
            reply = page.locator(".msg.assistant .text").last.inner_text()
            pieces = page.evaluate("window.__pieces")
            status = page.locator("#status").inner_text()
            page.screenshot(path=screenshot, full_page=True)
            return dict(model=model, mode=mode, reply=reply, pieces=pieces, status=status,
                        errors=errors,
                        user=page.locator(".msg.user .text").last.inner_text())
        finally:
            browser.close()


def test_chat_page_completion_mode(tiny_server, tmp_path):
    shot = str(tmp_path / "chat-page-tinystories.png")
    r = drive(tiny_server.url, "Once upon a time", shot, temperature=0)
    print(f"\nscreenshot: {shot}")
    assert r["errors"] == []
    assert r["model"] == "tiny"
    assert r["mode"] == "completion"  # TinyStories has no chat template
    assert r["user"] == "Once upon a time"
    # The page shows the prompt and then exactly the API's greedy continuation.
    api = OpenAI(base_url=tiny_server.url + "/v1", api_key="x").completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=48, temperature=0)
    assert r["reply"] == "Once upon a time" + api.choices[0].text
    assert f"{api.usage.completion_tokens} tokens" in r["status"]
    assert os.path.getsize(shot) > 10_000


@pytest.mark.parametrize("chat_server", ["qwen3"], indirect=True)
def test_chat_page_chat_mode(chat_server, tmp_path):
    shot = str(tmp_path / "chat-page-qwen3.png")
    r = drive(chat_server.url, "Hello there!", shot)
    print(f"\nscreenshot: {shot}")
    assert r["errors"] == []
    assert r["mode"] == "chat"
    assert r["user"] == "Hello there!"
    # Streamed: the reply grew through several distinct states before it was done.
    assert len(set(r["pieces"])) >= 3, r["pieces"]
    assert r["pieces"][-1] == r["reply"]
    assert "tokens" in r["status"]
    assert os.path.getsize(shot) > 10_000
