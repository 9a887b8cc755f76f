// kite._core.SamplingParams: the C++ struct, field for field, and parse_sampling_params, which
// kite.SamplingParams (Python) uses to turn its values into one with the HTTP server's checks.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "binding.h"
#include "kite/sampling_params.h"
#include "sampling_json.h"

namespace kite::python {

void bind_sampling(nb::module_& m) {
  nb::class_<SamplingParams>(m, "SamplingParams")
      .def(nb::init<>())
      .def("__copy__", [](const SamplingParams& p) { return SamplingParams(p); })
      .def_rw("n", &SamplingParams::n)
      .def_rw("temperature", &SamplingParams::temperature)
      .def_rw("top_p", &SamplingParams::top_p)
      .def_rw("top_k", &SamplingParams::top_k)
      .def_rw("min_p", &SamplingParams::min_p)
      .def_rw("repetition_penalty", &SamplingParams::repetition_penalty)
      .def_rw("presence_penalty", &SamplingParams::presence_penalty)
      .def_rw("frequency_penalty", &SamplingParams::frequency_penalty)
      .def_rw("logit_bias", &SamplingParams::logit_bias)
      .def_rw("seed", &SamplingParams::seed, nb::arg("seed").none())
      .def_rw("max_tokens", &SamplingParams::max_tokens)
      .def_rw("min_tokens", &SamplingParams::min_tokens)
      .def_rw("stop", &SamplingParams::stop)
      .def_rw("stop_token_ids", &SamplingParams::stop_token_ids)
      .def_rw("ignore_eos", &SamplingParams::ignore_eos)
      .def_rw("include_stop_str_in_output", &SamplingParams::include_stop_str_in_output)
      .def_rw("logprobs", &SamplingParams::logprobs, nb::arg("logprobs").none())
      .def_rw("prompt_logprobs", &SamplingParams::prompt_logprobs,
              nb::arg("prompt_logprobs").none())
      .def_rw("skip_special_tokens", &SamplingParams::skip_special_tokens)
      .def_rw("spaces_between_special_tokens", &SamplingParams::spaces_between_special_tokens)
      .def_prop_ro("greedy", &SamplingParams::greedy)
      .def(
          "validate",
          [](const SamplingParams& p, int64_t vocab_size) {
            Status s = p.validate(vocab_size);
            if (!s.ok()) raise_status(s);
          },
          nb::arg("vocab_size") = 0,
          "Raises ValueError with the engine's message when a value is out of range "
          "(vocab_size <= 0 skips the token-id checks).");

  m.def(
      "parse_sampling_params",
      [](std::string_view fields_json, int64_t vocab_size, const SamplingParams& defaults) {
        python_api::SamplingParseResult r =
            python_api::parse_sampling_params(fields_json, vocab_size, defaults);
        if (r.ok) return std::move(r.params);
        PyObject* type = r.code == "invalid_type"        ? PyExc_TypeError
                         : r.code == "unsupported_value" ? PyExc_NotImplementedError
                                                         : PyExc_ValueError;
        PyErr_SetString(type, r.message.c_str());
        throw nb::python_error();
      },
      nb::arg("fields_json"), nb::arg("vocab_size"), nb::arg("defaults"),
      "SamplingParams from a JSON object of /v1/completions sampling fields, checked by the HTTP "
      "server's parser and SamplingParams::validate. Raises the server's message: TypeError for "
      "a wrong JSON type, ValueError for a bad value.");
}

}  // namespace kite::python
