// kite._core.Engine and its plain-data companions (EngineConfig, ModelInfo, EngineStats).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "binding.h"
#include "engine_handle.h"
#include "kite/engine.h"

namespace kite::python {

const std::shared_ptr<Engine>& EngineHandle::get() const {
  if (!engine) {
    PyErr_SetString(PyExc_RuntimeError, "the engine was shut down (LLM.shutdown())");
    throw nb::python_error();
  }
  return engine;
}

namespace {

void bind_config(nb::module_& m) {
  nb::class_<EngineConfig>(m, "EngineConfig")
      .def(nb::init<>())
      .def_rw("model", &EngineConfig::model)
      .def_rw("tokenizer", &EngineConfig::tokenizer)
      .def_rw("revision", &EngineConfig::revision)
      .def_rw("tokenizer_revision", &EngineConfig::tokenizer_revision)
      .def_rw("download_dir", &EngineConfig::download_dir)
      .def_rw("served_model_name", &EngineConfig::served_model_name)
      .def_rw("load_format", &EngineConfig::load_format)
      .def_rw("dtype", &EngineConfig::dtype)
      .def_rw("device", &EngineConfig::device)
      .def_rw("max_model_len", &EngineConfig::max_model_len)
      .def_rw("max_num_seqs", &EngineConfig::max_num_seqs)
      .def_rw("max_num_batched_tokens", &EngineConfig::max_num_batched_tokens)
      .def_rw("block_size", &EngineConfig::block_size)
      .def_rw("gpu_memory_utilization", &EngineConfig::gpu_memory_utilization)
      .def_rw("kv_cache_memory_bytes", &EngineConfig::kv_cache_memory_bytes)
      .def_rw("kv_cache_dtype", &EngineConfig::kv_cache_dtype)
      .def_rw("quantization", &EngineConfig::quantization)
      .def_rw("enable_prefix_caching", &EngineConfig::enable_prefix_caching)
      .def_rw("enable_chunked_prefill", &EngineConfig::enable_chunked_prefill)
      .def_rw("scheduling_policy", &EngineConfig::scheduling_policy)
      .def_rw("max_waiting_requests", &EngineConfig::max_waiting_requests)
      .def_rw("enforce_eager", &EngineConfig::enforce_eager)
      .def_rw("tensor_parallel_size", &EngineConfig::tensor_parallel_size)
      .def_rw("num_threads", &EngineConfig::num_threads)
      .def_rw("seed", &EngineConfig::seed)
      .def_rw("runner", &EngineConfig::runner);
}

void bind_info(nb::module_& m) {
  nb::class_<ModelInfo>(m, "ModelInfo")
      .def_ro("served_model_name", &ModelInfo::served_model_name)
      .def_ro("model_path", &ModelInfo::model_path)
      .def_ro("tokenizer_path", &ModelInfo::tokenizer_path)
      .def_ro("architecture", &ModelInfo::architecture)
      .def_ro("backend", &ModelInfo::backend)
      .def_ro("max_model_len", &ModelInfo::max_model_len)
      .def_ro("vocab_size", &ModelInfo::vocab_size)
      .def_ro("eos_token_ids", &ModelInfo::eos_token_ids)
      .def_ro("bos_token_id", &ModelInfo::bos_token_id)
      .def_ro("has_chat_template", &ModelInfo::has_chat_template)
      .def_ro("default_sampling", &ModelInfo::default_sampling)
      .def_ro("num_kv_blocks", &ModelInfo::num_kv_blocks)
      .def_ro("kv_cache_dtype", &ModelInfo::kv_cache_dtype)
      .def_ro("kv_cache_bytes", &ModelInfo::kv_cache_bytes)
      .def_ro("block_size", &ModelInfo::block_size)
      .def_ro("runner", &ModelInfo::runner)
      .def_prop_ro("pooling_type", [](const ModelInfo& i) { return i.pooling.type; })
      .def_prop_ro("embedding_size", [](const ModelInfo& i) { return i.pooling.embedding_size; });

  nb::class_<EngineStats>(m, "EngineStats")
      .def_ro("num_running", &EngineStats::num_running)
      .def_ro("num_waiting", &EngineStats::num_waiting)
      .def_ro("kv_cache_usage", &EngineStats::kv_cache_usage)
      .def_ro("num_kv_blocks_used", &EngineStats::num_kv_blocks_used)
      .def_ro("prefix_cache_queries", &EngineStats::prefix_cache_queries)
      .def_ro("prefix_cache_hits", &EngineStats::prefix_cache_hits)
      .def_ro("num_preemptions", &EngineStats::num_preemptions)
      .def_ro("prompt_tokens_total", &EngineStats::prompt_tokens_total)
      .def_ro("generation_tokens_total", &EngineStats::generation_tokens_total)
      .def_ro("num_steps", &EngineStats::num_steps)
      .def_ro("requests_finished_total", &EngineStats::requests_finished_total)
      .def_ro("requests_aborted_total", &EngineStats::requests_aborted_total);
}

}  // namespace

void bind_engine(nb::module_& m) {
  bind_config(m);
  bind_info(m);

  nb::class_<EngineHandle>(m, "Engine")
      .def(
          "__init__",
          [](EngineHandle* self, const EngineConfig& config) {
            Result<std::unique_ptr<Engine>> created = Status();
            {
              nb::gil_scoped_release release;  // loading a model takes a while
              created = Engine::create(config);
            }
            std::unique_ptr<Engine> engine = value_or_raise(std::move(created));
            new (self) EngineHandle{std::shared_ptr<Engine>(std::move(engine))};
          },
          nb::arg("config"),
          "Loads the model and starts the engine thread (the GIL is released meanwhile).")
      .def_prop_ro(
          "model_info", [](const EngineHandle& h) { return h.get()->model_info(); },
          "What the engine knows about the loaded model (a copy).")
      .def("stats", [](const EngineHandle& h) { return h.get()->stats(); })
      .def(
          "tokenize",
          [](const EngineHandle& h, std::string_view text, bool add_special_tokens) {
            std::shared_ptr<Engine> engine = h.get();
            Result<std::vector<int32_t>> ids = Status();
            {
              nb::gil_scoped_release release;
              ids = engine->tokenize(text, add_special_tokens);
            }
            return value_or_raise(std::move(ids));
          },
          nb::arg("text"), nb::arg("add_special_tokens") = true)
      .def(
          "detokenize",
          [](const EngineHandle& h, const std::vector<int32_t>& ids, bool skip_special_tokens) {
            std::shared_ptr<Engine> engine = h.get();
            Result<std::string> text = Status();
            {
              nb::gil_scoped_release release;
              text = engine->detokenize(ids, skip_special_tokens);
            }
            return value_or_raise(std::move(text));
          },
          nb::arg("ids"), nb::arg("skip_special_tokens") = false)
      .def(
          "apply_chat_template",
          [](const EngineHandle& h, std::string_view messages_json, bool add_generation_prompt,
             std::optional<std::string> chat_template, std::string tools_json,
             std::string extra_kwargs_json) {
            std::shared_ptr<Engine> engine = h.get();
            ChatTemplateOptions options;
            options.add_generation_prompt = add_generation_prompt;
            options.chat_template = std::move(chat_template);
            options.tools_json = std::move(tools_json);
            options.extra_kwargs_json = std::move(extra_kwargs_json);
            Result<std::string> text = Status();
            {
              nb::gil_scoped_release release;
              text = engine->apply_chat_template(messages_json, options);
            }
            return value_or_raise(std::move(text));
          },
          nb::arg("messages_json"), nb::arg("add_generation_prompt") = true,
          nb::arg("chat_template").none() = nb::none(), nb::arg("tools_json") = "",
          nb::arg("extra_kwargs_json") = "",
          "Renders a JSON array of chat messages with the model's (or the given) template.")
      .def(
          "abort", [](const EngineHandle& h, const std::string& id) { h.get()->abort(id); },
          nb::arg("request_id"))
      .def(
          "shutdown",
          [](EngineHandle& h, int64_t timeout_ms) {
            std::shared_ptr<Engine> engine = std::move(h.engine);
            if (!engine) return;
            nb::gil_scoped_release release;
            engine->shutdown(timeout_ms);
            engine.reset();  // frees the model unless a batch still holds it
          },
          nb::arg("timeout_ms") = 0,
          "Stops the engine: waits up to timeout_ms for running requests, aborts the rest and "
          "frees the model. Later calls raise RuntimeError.")
      .def_prop_ro("is_shut_down", [](const EngineHandle& h) { return h.engine == nullptr; });

  m.def("version_string", &version_string);
}

}  // namespace kite::python
