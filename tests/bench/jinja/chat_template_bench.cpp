// Chat-template parse and render times on real templates (tests/data/chat_templates).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "frontend/jinja/chat_template.h"

namespace {

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(KITE_SOURCE_DIR) + "/tests/data/chat_templates/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A conversation of `turns` user/assistant pairs of ~400 bytes each, plus a tool round trip.
kite::ChatTemplateInputs conversation(int turns) {
  kite::ChatTemplateInputs in;
  const std::string text(400, 'x');
  in.messages_json = R"([{"role": "system", "content": "You are a helpful assistant."})";
  for (int i = 0; i < turns; ++i) {
    in.messages_json.append(R"(,{"role": "user", "content": ")").append(text).append("\"}");
    in.messages_json.append(R"(,{"role": "assistant", "content": ")").append(text).append("\"}");
  }
  in.messages_json.append(R"(,{"role": "user", "content": "Weather in Paris?"})");
  in.messages_json.append(
      R"(,{"role": "assistant", "content": "", "tool_calls": [{"type": "function",)"
      R"( "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]})");
  in.messages_json.append(R"(,{"role": "tool", "content": "sunny"}])");
  in.tools_json =
      R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather.",)"
      R"( "parameters": {"type": "object", "properties": {"city": {"type": "string"}},)"
      R"( "required": ["city"]}}}])";
  in.add_generation_prompt = true;
  in.bos_token = "<|begin_of_text|>";
  in.eos_token = "<|eot_id|>";
  in.date_string = "2024-07-26";
  return in;
}

void BM_Parse(benchmark::State& state, const char* file) {
  const std::string source = read_file(file);
  for (auto _ : state) benchmark::DoNotOptimize(kite::ChatTemplate::parse(source));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * source.size()));
}

void BM_Render(benchmark::State& state, const char* file) {
  const kite::ChatTemplate t = kite::ChatTemplate::parse(read_file(file)).value();
  const kite::ChatTemplateInputs in = conversation(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    kite::Result<std::string> r = t.render(in);
    if (!r.ok()) {
      state.SkipWithError(r.status().to_string().c_str());
      break;
    }
    bytes = r->size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

BENCHMARK_CAPTURE(BM_Parse, qwen2_5, "Qwen-Qwen2.5-7B-Instruct.jinja");
BENCHMARK_CAPTURE(BM_Parse, llama3_1, "meta-llama-Llama-3.1-8B-Instruct.jinja");
BENCHMARK_CAPTURE(BM_Render, qwen2_5, "Qwen-Qwen2.5-7B-Instruct.jinja")->Arg(1)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(BM_Render, llama3_1, "meta-llama-Llama-3.1-8B-Instruct.jinja")
    ->Arg(1)
    ->Arg(10)
    ->Arg(100);
BENCHMARK_CAPTURE(BM_Render, hermes3, "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja")->Arg(10);

}  // namespace

BENCHMARK_MAIN();
