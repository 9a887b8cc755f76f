"""`kite serve` against hostile input (docs/serving.md, "Hostile input"): each case answers
with the documented status and the server keeps serving everyone else."""

import json
import threading

import pytest
from openai import OpenAI

from kite_server import TINY, KiteServer, http


def error_of(status, body, want_status):
    assert status == want_status, body
    return json.loads(body)["error"]


@pytest.mark.parametrize("field,value", [
    ("temperature", 1e300),         # inf as the sampler's float
    ("top_p", 1e-50),               # 0 as a float
    ("repetition_penalty", 1e-50),  # 0 as a float: a division by zero
    ("repetition_penalty", 1e39),   # inf as a float
])
def test_sampling_values_are_checked_as_floats(tiny_server, field, value):
    # A well-formed request runs alongside; it must finish whatever the bad one does.
    client = OpenAI(base_url=tiny_server.url + "/v1", api_key="x")
    good = {}
    t = threading.Thread(target=lambda: good.update(r=client.completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=16, temperature=0.5)))
    t.start()
    s, _, body = tiny_server.post("/v1/completions",
                                  {"model": "tiny", "prompt": ["Once", "Lily"], field: value,
                                   "max_tokens": 16})
    t.join()
    err = error_of(s, body, 400)
    assert field in err["message"] and "float" in err["message"]
    assert good["r"].choices[0].finish_reason == "length"
    s, _, _ = tiny_server.post("/v1/completions", {"model": "tiny", "prompt": "Once",
                                                   "max_tokens": 2})
    assert s == 200
