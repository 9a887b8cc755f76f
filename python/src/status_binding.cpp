// Status -> Python exceptions, and kite._core.EngineError.
#include <Python.h>

#include <string>

#include "binding.h"

namespace kite::python {
namespace {

PyObject* g_engine_error = nullptr;  // kite._core.EngineError (a new reference kept for good)

}  // namespace

void raise_status(const Status& status) {
  PyObject* type = nullptr;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      type = PyExc_ValueError;
      break;
    case StatusCode::kUnimplemented:
      type = PyExc_NotImplementedError;
      break;
    case StatusCode::kNotFound:
      type = PyExc_FileNotFoundError;
      break;
    default:
      type = g_engine_error;
      break;
  }
  const std::string message = status.ok() ? std::string("ok") : status.message();
  if (type != g_engine_error) {
    PyErr_SetString(type, message.c_str());
    throw nb::python_error();
  }
  // EngineError(message) with .code = "resource_exhausted", ...
  nb::object error = nb::borrow(type)(nb::str(message.c_str()));
  error.attr("code") = nb::str(std::string(status_code_name(status.code())).c_str());
  PyErr_SetObject(type, error.ptr());
  throw nb::python_error();
}

void bind_status(nb::module_& m) {
  g_engine_error = PyErr_NewExceptionWithDoc(
      "kite._core.EngineError",
      "An error reported by the kite engine. `code` names its kind (\"resource_exhausted\", "
      "\"unavailable\", \"internal\", ...); the message is the engine's.",
      PyExc_RuntimeError, nullptr);
  if (g_engine_error == nullptr) throw nb::python_error();
  m.attr("EngineError") = nb::borrow(g_engine_error);
}

}  // namespace kite::python
