#include "cli/chat_session.h"

#include <fstream>

namespace kite::cli {

namespace bj = boost::json;

ChatSession::ChatSession(std::string system_prompt) { set_system(system_prompt); }

bj::array ChatSession::with_user(const std::string& text) const {
  bj::array out = messages_;
  out.push_back(bj::object{{"role", "user"}, {"content", text}});
  return out;
}

void ChatSession::add_turn(const std::string& user, const std::string& assistant) {
  messages_.push_back(bj::object{{"role", "user"}, {"content", user}});
  messages_.push_back(bj::object{{"role", "assistant"}, {"content", assistant}});
}

void ChatSession::set_system(const std::string& text) {
  const bool has = !messages_.empty() && messages_[0].as_object().at("role") == "system";
  if (has) messages_.erase(messages_.begin());
  if (!text.empty()) {
    messages_.insert(messages_.begin(), bj::object{{"role", "system"}, {"content", text}});
  }
}

void ChatSession::clear() {
  bj::array kept;
  if (!messages_.empty() && messages_[0].as_object().at("role") == "system") {
    kept.push_back(messages_[0]);
  }
  messages_ = std::move(kept);
}

Status ChatSession::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bj::serialize(bj::object{{"messages", messages_}}) << "\n";
  if (!out) return invalid_argument("cannot write " + path);
  return ok_status();
}

std::optional<std::string> InputAssembler::feed(const std::string& line) {
  if (line == "\"\"\"") {
    if (!in_block_) {
      in_block_ = true;
      return std::nullopt;
    }
    in_block_ = false;
    std::string out = std::move(pending_);
    reset();
    return out;
  }
  if (in_block_) {
    if (started_) pending_ += '\n';
    pending_ += line;
    started_ = true;
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\\') {
    if (started_) pending_ += '\n';
    pending_ += line.substr(0, line.size() - 1);
    started_ = true;
    return std::nullopt;
  }
  if (started_) pending_ += '\n';
  pending_ += line;
  std::string out = std::move(pending_);
  reset();
  return out;
}

void InputAssembler::reset() {
  in_block_ = false;
  started_ = false;
  pending_.clear();
}

std::optional<ChatCommand> parse_chat_command(std::string_view input) {
  if (input.empty() || input.front() != '/' || input.rfind("//", 0) == 0) return std::nullopt;
  if (input.find('\n') != std::string_view::npos) return std::nullopt;
  ChatCommand c;
  const size_t space = input.find(' ');
  c.name = std::string(input.substr(1, space == std::string_view::npos ? space : space - 1));
  if (space != std::string_view::npos) {
    std::string_view arg = input.substr(space + 1);
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
    while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
    c.arg = std::string(arg);
  }
  return c;
}

}  // namespace kite::cli
