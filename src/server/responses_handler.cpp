#include "server/handlers.h"

namespace kite::server {

boost::asio::awaitable<void> handle_responses(Exchange& ex) {
  co_await ex.send_error(not_found_path(ex.route().path));
}

}  // namespace kite::server
