#include "telemetry/trace_context.h"

#include <mutex>
#include <random>

namespace kite::telemetry {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // the spec allows lowercase only
}

template <size_t N>
bool parse_hex(std::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  bool nonzero = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = hex_digit(s[2 * i]);
    const int lo = hex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
    nonzero |= (*out)[i] != 0;
  }
  return nonzero;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

}  // namespace

std::string hex(const uint8_t* data, size_t size) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < size; ++i) {
    s += kHex[data[i] >> 4];
    s += kHex[data[i] & 15];
  }
  return s;
}

std::optional<TraceContext> parse_traceparent(std::string_view h) {
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  // version "-" trace-id "-" parent-id "-" flags; a future version may append "-..." fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const std::string_view version = h.substr(0, 2);
  if (hex_digit(version[0]) < 0 || hex_digit(version[1]) < 0 || version == "ff") {
    return std::nullopt;
  }
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  TraceContext c;
  if (!parse_hex(h.substr(3, 32), &c.trace_id) || !parse_hex(h.substr(36, 16), &c.span_id)) {
    return std::nullopt;
  }
  const std::string_view f = h.substr(53, 2);
  if (hex_digit(f[0]) < 0 || hex_digit(f[1]) < 0) return std::nullopt;
  c.flags = static_cast<uint8_t>(hex_digit(f[0]) * 16 + hex_digit(f[1]));
  return c;
}

std::string format_traceparent(const TraceId& trace, const SpanId& span, uint8_t flags) {
  return "00-" + hex(trace.data(), trace.size()) + "-" + hex(span.data(), span.size()) + "-" +
         hex(&flags, 1);
}

TraceId random_trace_id() {
  TraceId id{};
  while (true) {
    const uint64_t a = rng()(), b = rng()();
    for (int i = 0; i < 8; ++i) {
      id[i] = static_cast<uint8_t>(a >> (8 * i));
      id[8 + i] = static_cast<uint8_t>(b >> (8 * i));
    }
    if (a != 0 || b != 0) return id;
  }
}

SpanId random_span_id() {
  SpanId id{};
  uint64_t a = 0;
  while (a == 0) a = rng()();
  for (int i = 0; i < 8; ++i) id[i] = static_cast<uint8_t>(a >> (8 * i));
  return id;
}

}  // namespace kite::telemetry
