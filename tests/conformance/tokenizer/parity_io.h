// Helpers shared by the tokenizer conformance tests: reading the corpus and oracle outputs, and
// printing strings and id lists in failure messages.
#pragma once

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace kite::parity {

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

inline std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// The corpus strings as raw bytes ({"t": text} or {"hex": bytes that are not UTF-8}).
inline std::vector<std::string> read_corpus(const std::string& path) {
  std::vector<std::string> corpus;
  for (const std::string& line : read_lines(path)) {
    boost::json::object rec = boost::json::parse(line).as_object();
    if (auto* t = rec.if_contains("t")) {
      corpus.emplace_back(t->as_string());
    } else {
      corpus.push_back(from_hex(rec.at("hex").as_string()));
    }
  }
  return corpus;
}

inline std::vector<int32_t> ids_of(const boost::json::value& v) {
  std::vector<int32_t> ids;
  for (const auto& x : v.as_array()) ids.push_back(static_cast<int32_t>(x.to_number<int64_t>()));
  return ids;
}

// Printable form of a string for failure messages.
inline std::string escaped(std::string_view s, size_t max_len = 160) {
  std::string out;
  for (char c : s.substr(0, max_len)) {
    auto u = static_cast<unsigned char>(c);
    if (u == '\n') {
      out += "\\n";
    } else if (u == '\r') {
      out += "\\r";
    } else if (u == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > max_len) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

inline std::string ids_str(const std::vector<int32_t>& ids, size_t max_n = 40) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size() && i < max_n; ++i) os << (i ? "," : "") << ids[i];
  if (ids.size() > max_n) os << ",...(" << ids.size() << ")";
  os << "]";
  return os.str();
}

}  // namespace kite::parity
