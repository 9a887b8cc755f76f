// The conversation of `kite chat`: messages, the slash commands, and multi-line input. No I/O
// beyond what the caller passes in, so it is tested without a terminal.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite::cli {

class ChatSession {
 public:
  explicit ChatSession(std::string system_prompt = "");

  // OpenAI-format messages so far ({"role", "content"}), the system prompt first if set.
  const boost::json::array& messages() const { return messages_; }
  // The messages to send for a new user turn (the history plus it).
  boost::json::array with_user(const std::string& text) const;
  // Records a finished (or stopped) turn.
  void add_turn(const std::string& user, const std::string& assistant);
  // Sets (or with "", removes) the system prompt; the turns are kept.
  void set_system(const std::string& text);
  void clear();  // forgets the turns, keeps the system prompt
  // Writes {"messages": [...]} to `path`.
  Status save(const std::string& path) const;

 private:
  boost::json::array messages_;
};

// Input lines -> messages: a line `"""` opens a block that the next `"""` line closes (the lines
// between join with '\n'); a line ending in '\' continues on the next line.
class InputAssembler {
 public:
  // Feeds one line (without its newline). Returns the complete input once there is one.
  std::optional<std::string> feed(const std::string& line);
  bool in_block() const { return in_block_ || !pending_.empty(); }
  void reset();

 private:
  bool in_block_ = false;
  bool started_ = false;
  std::string pending_;
};

// A slash command of the chat, parsed ("/save x.json" -> {"save", "x.json"}); nullopt when the
// input is a message. "//text" is the message "/text".
struct ChatCommand {
  std::string name;
  std::string arg;
};
std::optional<ChatCommand> parse_chat_command(std::string_view input);

}  // namespace kite::cli
