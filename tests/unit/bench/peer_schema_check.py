"""Computes the metrics of synthetic requests with the peers' bench_schema.py and prints them as
JSON, for comparison with kite's C++ (the peers' numbers must mean the same thing).
Input: a JSON file {"duration_s": D, "samples": [{"start_s", "token_times_s", "end_s",
"prompt_tokens", "output_tokens"}]}."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts", "peers"))
import bench_schema  # noqa: E402

data = json.load(open(sys.argv[1]))
samples = [bench_schema.Sample(s["start_s"], s["token_times_s"], s["end_s"], s["prompt_tokens"],
                               s["output_tokens"], s["output_tokens"]) for s in data["samples"]]
print(json.dumps(bench_schema.metrics(samples, data["duration_s"])))
