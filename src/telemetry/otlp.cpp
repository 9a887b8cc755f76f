#include "telemetry/otlp.h"

#include <cstring>

#include "core/version.h"

namespace kite::telemetry {
namespace {

// Protobuf wire format: https://protobuf.dev/programming-guides/encoding/
class Writer {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void tag(int field, int wire_type) { varint((static_cast<uint64_t>(field) << 3) | wire_type); }
  void bytes_field(int field, const void* data, size_t size) {
    tag(field, 2);
    varint(size);
    out_.append(static_cast<const char*>(data), size);
  }
  void string_field(int field, const std::string& s) { bytes_field(field, s.data(), s.size()); }
  void message_field(int field, const Writer& m) { string_field(field, m.out_); }
  void varint_field(int field, uint64_t v) {
    tag(field, 0);
    varint(v);
  }
  void fixed64_field(int field, uint64_t v) {
    tag(field, 1);
    for (int i = 0; i < 8; ++i) out_ += static_cast<char>(v >> (8 * i));
  }
  void fixed32_field(int field, uint32_t v) {
    tag(field, 5);
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>(v >> (8 * i));
  }
  void double_field(int field, double d) {
    uint64_t v = 0;
    std::memcpy(&v, &d, sizeof v);
    fixed64_field(field, v);
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// KeyValue { key = 1; AnyValue value = 2 }, AnyValue { string 1 | bool 2 | int64 3 | double 4 }
Writer key_value(const Attribute& a) {
  Writer value;
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    value.string_field(1, *s);
  } else if (const auto* b = std::get_if<bool>(&a.value)) {
    value.varint_field(2, *b ? 1 : 0);
  } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
    value.varint_field(3, static_cast<uint64_t>(*i));
  } else {
    value.double_field(4, std::get<double>(a.value));
  }
  Writer kv;
  kv.string_field(1, a.key);
  kv.message_field(2, value);
  return kv;
}

Writer span_message(const Span& s) {
  Writer w;
  w.bytes_field(1, s.trace_id.data(), s.trace_id.size());
  w.bytes_field(2, s.span_id.data(), s.span_id.size());
  bool has_parent = false;
  for (uint8_t b : s.parent_span_id) has_parent |= b != 0;
  if (has_parent) w.bytes_field(4, s.parent_span_id.data(), s.parent_span_id.size());
  w.string_field(5, s.name);
  w.varint_field(6, static_cast<uint64_t>(s.kind));
  w.fixed64_field(7, s.start_unix_nano);
  w.fixed64_field(8, s.end_unix_nano);
  for (const Attribute& a : s.attributes) w.message_field(9, key_value(a));
  if (s.error) {  // Status { message = 2; code = 3 (2: ERROR) }
    Writer status;
    if (!s.status_message.empty()) status.string_field(2, s.status_message);
    status.varint_field(3, 2);
    w.message_field(15, status);
  }
  return w;
}

}  // namespace

std::string encode_export_request(const std::vector<Span>& spans, const std::string& service_name,
                                  const std::vector<Attribute>& resource_attributes) {
  Writer resource;  // Resource { repeated KeyValue attributes = 1 }
  resource.message_field(1, key_value({"service.name", service_name}));
  resource.message_field(1, key_value({"telemetry.sdk.name", std::string("kite")}));
  resource.message_field(1, key_value({"telemetry.sdk.language", std::string("cpp")}));
  for (const Attribute& a : resource_attributes) resource.message_field(1, key_value(a));
  Writer scope;  // InstrumentationScope { name = 1; version = 2 }
  scope.string_field(1, "kite");
  scope.string_field(2, KITE_VERSION_STRING);
  Writer scope_spans;  // ScopeSpans { scope = 1; repeated Span spans = 2 }
  scope_spans.message_field(1, scope);
  for (const Span& s : spans) scope_spans.message_field(2, span_message(s));
  Writer resource_spans;  // ResourceSpans { resource = 1; repeated ScopeSpans scope_spans = 2 }
  resource_spans.message_field(1, resource);
  resource_spans.message_field(2, scope_spans);
  Writer request;  // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }
  request.message_field(1, resource_spans);
  return request.str();
}

}  // namespace kite::telemetry
