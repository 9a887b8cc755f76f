// `kite chat MODEL` / `kite chat --url URL`: an interactive terminal chat.
//   >>> text            a message (streamed reply)
//   >>> """ ... """     a multi-line message (also: end a line with \ to continue it)
//   /system TEXT, /clear, /save FILE, /help, /bye (or Ctrl-D)
//   Ctrl-C stops a reply and keeps the chat; at the prompt it only clears the line.
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "cli/chat_backends.h"
#include "cli/chat_session.h"
#include "cli/command.h"
#include "cli/engine_args.h"
#include "core/mapped_file.h"
#include "kite/engine.h"

namespace kite::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

// SIGINT only sets a flag: the reply loops and the line reader poll it.
void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

struct ChatArgs {
  EngineArgs engine;
  SamplingArgs sampling;
  std::string url;
  std::string model_name;
  std::string api_key;
  std::string system;
  std::string chat_template;  // a file
};

// Reads stdin line by line. Waits with poll() in short slices so that a Ctrl-C that lands just
// before the wait is still seen (a blocking read would miss it and hang).
class LineReader {
 public:
  // One line without its newline; nullopt at end of input. *interrupted: Ctrl-C came first (the
  // partial line is dropped, as the terminal drops it).
  std::optional<std::string> next(bool* interrupted) {
    *interrupted = false;
    while (true) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (eof_) {
        if (buf_.empty()) return std::nullopt;
        return std::exchange(buf_, std::string());
      }
      if (g_interrupted.exchange(false)) {
        buf_.clear();
        *interrupted = true;
        return std::string();
      }
      pollfd pfd{STDIN_FILENO, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;  // time-out or EINTR: check the flag again
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        eof_ = true;
      }
    }
  }

 private:
  std::string buf_;
  bool eof_ = false;
};

const char* kHelp =
    "  /system TEXT   set the system prompt (empty: remove it)\n"
    "  /clear         forget the conversation (keeps the system prompt)\n"
    "  /save FILE     write the conversation as JSON ({\"messages\": [...]})\n"
    "  /bye           leave (or Ctrl-D)\n"
    "  \"\"\"            start and end a multi-line message (or end a line with \\)\n"
    "  Ctrl-C         stop a reply\n";

int chat_loop(ChatBackend& backend, ChatSession& session) {
  std::printf("kite chat: %s. /help for commands, /bye or Ctrl-D to leave.\n",
              backend.description().c_str());
  InputAssembler input;
  LineReader reader;
  while (true) {
    std::fputs(input.in_block() ? "... " : ">>> ", stdout);
    std::fflush(stdout);
    bool interrupted = false;
    std::optional<std::string> line = reader.next(&interrupted);
    if (!line) {
      std::fputs("\n", stdout);
      return 0;
    }
    if (interrupted) {
      input.reset();
      std::fputs("\n(Ctrl-D or /bye to leave)\n", stdout);
      continue;
    }
    std::optional<std::string> text = input.feed(*line);
    if (!text) continue;
    if (text->empty()) continue;
    if (std::optional<ChatCommand> cmd = parse_chat_command(*text)) {
      if (cmd->name == "bye" || cmd->name == "exit" || cmd->name == "quit") return 0;
      if (cmd->name == "help" || cmd->name == "?") {
        std::fputs(kHelp, stdout);
      } else if (cmd->name == "system") {
        session.set_system(cmd->arg);
        std::puts(cmd->arg.empty() ? "(system prompt removed)" : "(system prompt set)");
      } else if (cmd->name == "clear") {
        session.clear();
        std::puts("(conversation cleared)");
      } else if (cmd->name == "save") {
        if (cmd->arg.empty()) {
          std::puts("usage: /save FILE");
        } else if (Status s = session.save(cmd->arg); !s.ok()) {
          std::printf("error: %s\n", s.message().c_str());
        } else {
          std::printf("(saved to %s)\n", cmd->arg.c_str());
        }
      } else {
        std::printf("unknown command /%s (/help lists them)\n", cmd->name.c_str());
      }
      continue;
    }
    const std::string user = text->rfind("//", 0) == 0 ? text->substr(1) : *text;
    std::string reply;
    g_interrupted = false;
    Status s = backend.reply(
        session.with_user(user),
        [](std::string_view piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        },
        g_interrupted, &reply);
    g_interrupted = false;
    if (s.code() == StatusCode::kAborted) {
      std::fputs("\n(stopped)\n", stdout);
      session.add_turn(user, reply);  // what was shown stays in the conversation
    } else if (!s.ok()) {
      std::printf("\nerror: %s\n", s.to_string().c_str());  // the turn is dropped
    } else {
      std::fputs("\n", stdout);
      session.add_turn(user, reply);
    }
  }
}

int run_chat(ChatArgs& a) {
  install_sigint();
  ChatSession session(a.system);
  if (!a.url.empty()) {
    if (!a.engine.config.model.empty()) {
      std::fprintf(stderr, "kite chat: give a MODEL or --url, not both\n");
      return 2;
    }
    HttpChatOptions o;
    o.url = a.url;
    o.model = a.model_name;
    o.api_key = a.api_key;
    // Only the sampling flags given on the command line go into requests.
    const SamplingParams& p = a.sampling.params;
    const auto& opts = a.sampling.model_default_options;  // temperature, top_p, top_k, min_p,
    if (opts[0]->count()) o.sampling["temperature"] = p.temperature;  // repetition_penalty,
    if (opts[1]->count()) o.sampling["top_p"] = p.top_p;              // max_tokens
    if (opts[2]->count()) o.sampling["top_k"] = p.top_k;
    if (opts[3]->count()) o.sampling["min_p"] = p.min_p;
    if (opts[4]->count()) o.sampling["repetition_penalty"] = p.repetition_penalty;
    if (opts[5]->count()) o.sampling["max_tokens"] = p.max_tokens;
    if (a.sampling.seed) o.sampling["seed"] = *a.sampling.seed;
    auto backend = make_http_chat_backend(std::move(o));
    if (!backend.ok()) {
      std::fprintf(stderr, "kite chat: %s\n", backend.status().to_string().c_str());
      return 1;
    }
    return chat_loop(**backend, session);
  }
  if (a.engine.config.model.empty()) {
    std::fprintf(stderr, "kite chat: give a MODEL (a folder, .gguf or Hub id) or --url URL\n");
    return 2;
  }
  if (Status s = finish_engine_args(&a.engine); !s.ok()) {
    std::fprintf(stderr, "kite chat: %s\n", s.message().c_str());
    return 2;
  }
  if (a.engine.pipeline_parallel_size != 1 || a.engine.config.tensor_parallel_size != 1) {
    std::fprintf(stderr,
                 "kite chat: runs one rank; for several, start `kite serve ... "
                 "--tensor-parallel-size N` and chat with it through --url (docs/parallel.md)\n");
    return 2;
  }
  std::optional<std::string> chat_template;
  if (!a.chat_template.empty()) {
    auto text = read_file(a.chat_template, kMaxTemplateFileBytes);
    if (!text.ok()) {
      std::fprintf(stderr, "kite chat: --chat-template: %s\n", text.status().to_string().c_str());
      return 2;
    }
    chat_template = std::move(*text);
  }
  auto engine = Engine::create(a.engine.config);
  if (!engine.ok()) {
    std::fprintf(stderr, "kite chat: error: %s\n", engine.status().to_string().c_str());
    return 1;
  }
  std::shared_ptr<Engine> shared = std::move(*engine);
  if (!shared->model_info().has_chat_template && !chat_template) {
    std::fprintf(stderr, "kite chat: %s has no chat template: pass --chat-template FILE\n",
                 a.engine.config.model.c_str());
    return 2;
  }
  SamplingParams params = sampling_defaults(a.sampling, shared->model_info().default_sampling);
  if (Status s = params.validate(shared->model_info().vocab_size); !s.ok()) {
    std::fprintf(stderr, "kite chat: %s\n", s.message().c_str());
    return 2;
  }
  auto backend = make_engine_chat_backend(shared, params, chat_template);
  const int rc = chat_loop(*backend, session);
  shared->shutdown(0);
  return rc;
}

}  // namespace

KITE_REGISTER_COMMAND(
    chat, "chat", "Chat with a model in the terminal (or with any OpenAI-compatible server)",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<ChatArgs>();
      sub.add_option("model", args->engine.config.model,
                     "HF model directory, .gguf file or Hugging Face Hub id (org/name[:QUANT])");
      sub.add_option("--url", args->url,
                     "chat with an OpenAI-compatible server instead (http://host:8000)");
      sub.add_option("--model", args->model_name,
                     "--url: model name (default: the server's first)");
      sub.add_option("--api-key", args->api_key, "--url: bearer token (default: $OPENAI_API_KEY)");
      sub.add_option("--system", args->system, "system prompt");
      sub.add_option("--chat-template", args->chat_template,
                     "Jinja chat template file (default: the model's)");
      // A chat reply may use the rest of the context, as OpenAI's chat API does by default.
      args->sampling.params.max_tokens = int64_t{1} << 40;
      add_sampling_args(sub, &args->sampling);
      sub.get_option("--max-tokens")
          ->description("tokens per reply (default: the rest of the context)");
      add_engine_args(sub, &args->engine);
      return [args]() -> int { return run_chat(*args); };
    });

}  // namespace kite::cli
