// The chat page served at GET / (chat_page.html, embedded in the binary at build time).
#pragma once

#include <string_view>

namespace kite::server {

std::string_view chat_page_html();

}  // namespace kite::server
