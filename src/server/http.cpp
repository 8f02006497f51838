#include "server/http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

namespace hearth::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

HttpResponse json_error(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
  return r;
}

namespace {

constexpr auto kIdleTimeout = std::chrono::minutes(5);  // an idle keep-alive connection is dropped

class Session;

// Per-request answer channel; every socket operation is posted to the session's strand.
class SessionResponder final : public Responder {
 public:
  SessionResponder(std::shared_ptr<Session> s, bool keep_alive, unsigned version)
      : session_(std::move(s)), keep_alive_(keep_alive), version_(version) {}
  void send(HttpResponse r) override;
  std::shared_ptr<Stream> stream(int status, const std::string& content_type) override;
  void watch_disconnect() override;
  bool closed() const override;

 private:
  std::shared_ptr<Session> session_;
  bool keep_alive_;
  unsigned version_;
  std::atomic<bool> used_{false};
};

class Session : public std::enable_shared_from_this<Session>, public Stream {
 public:
  Session(tcp::socket&& s, const ServerOptions& o, const Handler& h)
      : stream_(std::move(s)), opt_(o), handler_(h) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // ---- Stream (one response at a time per connection)
  bool write(std::string piece) override {
    if (closed_) return false;
    net::post(stream_.get_executor(), [self = shared_from_this(), p = std::move(piece)]() mutable {
      self->queue_.push_back(std::move(p));
      self->pump();
    });
    return !closed_;
  }
  void end() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->ending_) return;
      self->ending_ = true;
      self->pump();
    });
  }
  bool closed() const override { return closed_; }
  void watch_pending() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->waiting_ || self->streaming_) return;
      self->waiting_ = true;
      self->watch_peer();
    });
  }

  void send_response(HttpResponse r, bool keep_alive, unsigned version) {
    net::post(stream_.get_executor(), [self = shared_from_this(), r = std::move(r), keep_alive,
                                       version]() mutable {
      auto res =
          std::make_shared<http::response<http::string_body>>(http::status(r.status), version);
      res->set(http::field::server, "hearth");
      res->set(http::field::content_type, r.content_type);
      for (auto& [k, v] : r.headers) res->set(k, v);
      res->keep_alive(keep_alive);
      res->body() = std::move(r.body);
      res->prepare_payload();
      if (self->waiting_) {
        self->waiting_ = false;
        self->stream_.socket().cancel();  // stop watch_peer
      }
      http::async_write(self->stream_, *res, [self, res, keep_alive](beast::error_code ec, size_t) {
        if (ec) return self->close();
        if (!keep_alive) return self->drain_and_close();
        self->read_header();
      });
    });
  }

  void begin_stream(int status, const std::string& content_type, bool keep_alive,
                    unsigned version) {
    net::post(stream_.get_executor(), [self = shared_from_this(), status, content_type, keep_alive,
                                       version] {
      self->keep_alive_ = keep_alive;
      self->streaming_ = true;
      self->ending_ = false;
      self->queue_.clear();
      auto res = std::make_shared<http::response<http::empty_body>>(http::status(status), version);
      res->set(http::field::server, "hearth");
      res->set(http::field::content_type, content_type);
      res->set(http::field::cache_control, "no-cache");
      res->keep_alive(keep_alive);
      res->chunked(true);
      auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
      self->stream_.expires_never();  // a long generation is not an idle connection
      self->writing_ = true;
      http::async_write_header(self->stream_, *sr, [self, res, sr](beast::error_code ec, size_t) {
        self->writing_ = false;
        if (ec) return self->close();
        self->watch_peer();
        self->pump();
      });
    });
  }

 private:
  void close() {
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  // After an error answered before the body was read (413): stop sending, then read and drop
  // what the client still sends so it gets to read the answer instead of a reset connection.
  void drain_and_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(30));
    auto sink = std::make_shared<std::array<char, 65536>>();
    stream_.async_read_some(net::buffer(*sink),
                            [self = shared_from_this(), sink](beast::error_code e, size_t) {
                              if (e) return self->close();
                              self->drain_and_close();
                            });
  }

  // While a stream is open nothing is read, so a hang-up is noticed by waiting for the socket to
  // become readable and peeking: 0 bytes means the peer closed.
  void watch_peer() {
    stream_.socket().async_wait(
        tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
          if (!self->streaming_ && !self->waiting_) return;
          if (ec) {
            self->closed_ = true;
            return;
          }
          char c;
          const ssize_t n =
              ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            self->closed_ = true;
            return;
          }
          if (n < 0) self->watch_peer();  // spurious wake-up
          // n > 0: the client sent its next request early; it is read after this response.
        });
  }

  void pump() {
    if (!streaming_ || writing_) return;
    if (closed_) {
      queue_.clear();
      return;
    }
    if (!queue_.empty()) {
      auto piece = std::make_shared<std::string>(std::move(queue_.front()));
      queue_.pop_front();
      writing_ = true;
      net::async_write(stream_, http::make_chunk(net::buffer(*piece)),
                       [self = shared_from_this(), piece](beast::error_code ec, size_t) {
                         self->writing_ = false;
                         if (ec) return self->close();
                         self->pump();
                       });
      return;
    }
    if (ending_) {
      writing_ = true;
      streaming_ = false;
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->writing_ = false;
                         self->stream_.socket().cancel();  // stop watch_peer
                         if (ec || !self->keep_alive_) return self->close();
                         self->read_header();
                       });
    }
  }

  void read_header() {
    header_parser_.emplace();
    header_parser_->header_limit(64 * 1024);
    // Each body parser sets its own limit. (Not boost::none: Beast 1.74 compares the length
    // against the optional and an empty optional always loses.)
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return close();
    const auto& h = header_parser_->get();
    const std::string target(h.target());
    bool to_file = false;
    if (h.method() == http::verb::post)
      for (const auto& p : opt_.file_body_prefixes) to_file |= target.rfind(p, 0) == 0;
    if (to_file) {
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      char tmpl[] = "upload-XXXXXX";
      std::string path = opt_.upload_dir + "/.tmp-" + tmpl;
      const int fd = ::mkstemp(path.data());
      if (fd < 0) return reply_error(500, "cannot create an upload file in " + opt_.upload_dir);
      ::close(fd);
      upload_path_ = path;
      file_parser_->get().body().open(path.c_str(), beast::file_mode::write, ec);
      if (ec) return reply_error(500, "cannot open the upload file: " + ec.message());
      stream_.expires_never();
      http::async_read(
          stream_, buffer_, *file_parser_,
          [self = shared_from_this()](beast::error_code ec2, size_t) { self->on_body(ec2, true); });
    } else {
      if (auto len = header_parser_->content_length(); len && *len > opt_.max_body)
        return reply_error(
            413, "request body too large (limit " + std::to_string(opt_.max_body >> 20) + " MiB)");
      body_parser_.emplace(std::move(*header_parser_));
      body_parser_->body_limit(opt_.max_body);
      http::async_read(stream_, buffer_, *body_parser_,
                       [self = shared_from_this()](beast::error_code ec2, size_t) {
                         self->on_body(ec2, false);
                       });
    }
  }

  void reply_error(int status, const std::string& msg) {
    send_response(json_error(status, msg), false, 11);
  }

  template <class Msg>
  HttpRequest to_request(const Msg& m) {
    HttpRequest r;
    r.method = std::string(m.method_string());
    const std::string target(m.target());
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    for (const auto& f : m) {
      std::string k(f.name_string());
      for (auto& c : k) c = char(std::tolower(uint8_t(c)));
      r.headers[k] = std::string(f.value());
    }
    return r;
  }

  void on_body(beast::error_code ec, bool file) {
    if (ec == http::error::body_limit)
      return reply_error(
          413, "request body too large (limit " + std::to_string(opt_.max_body >> 20) + " MiB)");
    if (ec) {
      if (file) ::unlink(upload_path_.c_str());
      return close();
    }
    HttpRequest req;
    bool keep_alive;
    unsigned version;
    if (file) {
      auto& m = file_parser_->get();
      req = to_request(m);
      m.body().close();
      req.body_file = upload_path_;
      keep_alive = m.keep_alive();
      version = m.version();
    } else {
      auto& m = body_parser_->get();
      req = to_request(m);
      req.body = std::move(m.body());
      keep_alive = m.keep_alive();
      version = m.version();
    }
    stream_.expires_never();  // handlers may take a while (model load); the client waits
    auto responder = std::make_shared<SessionResponder>(shared_from_this(), keep_alive, version);
    try {
      handler_(req, responder);
    } catch (const std::exception& e) {
      responder->send(json_error(500, std::string("internal error: ") + e.what()));
    }
  }

  beast::tcp_stream stream_;
  const ServerOptions& opt_;
  const Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> body_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::string upload_path_;
  // Streaming state (touched only on the strand, except closed_).
  std::deque<std::string> queue_;
  bool streaming_ = false, writing_ = false, ending_ = false, keep_alive_ = true;
  bool waiting_ = false;  // a handler is working on a non-streamed answer
  std::atomic<bool> closed_{false};
};

void SessionResponder::send(HttpResponse r) {
  if (used_.exchange(true)) return;
  session_->send_response(std::move(r), keep_alive_, version_);
}

void SessionResponder::watch_disconnect() {
  session_->watch_pending();
}
bool SessionResponder::closed() const {
  return session_->closed();
}

std::shared_ptr<Stream> SessionResponder::stream(int status, const std::string& content_type) {
  if (used_.exchange(true)) return nullptr;
  session_->begin_stream(status, content_type, keep_alive_, version_);
  return session_;
}

}  // namespace

struct HttpServer::Impl {
  ServerOptions opt;
  Handler handler;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;

  void accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(s), opt, handler)->start();
      accept();
    });
  }
};

HttpServer::HttpServer(ServerOptions o, Handler h) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(o);
  impl_->handler = std::move(h);
}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::start() {
  beast::error_code ec;
  auto addr = net::ip::make_address(impl_->opt.host, ec);
  if (ec) {  // a host name ("localhost"): resolve it, preferring IPv4 as Ollama's listener does
    tcp::resolver resolver(impl_->ioc);
    const auto results = resolver.resolve(impl_->opt.host, "", ec);
    if (ec || results.empty())
      return invalid_argument("invalid listen address '" + impl_->opt.host +
                              "': not an IP address or a host name that resolves");
    addr = results.begin()->endpoint().address();
    for (const auto& r : results)
      if (r.endpoint().address().is_v4()) {
        addr = r.endpoint().address();
        break;
      }
  }
  const tcp::endpoint ep(addr, uint16_t(impl_->opt.port));
  impl_->acceptor.emplace(impl_->ioc);
  auto fail = [&](const char* what) {
    return Status(StatusCode::kUnavailable, std::string("cannot ") + what + " " + impl_->opt.host +
                                                ":" + std::to_string(impl_->opt.port) + ": " +
                                                ec.message());
  };
  impl_->acceptor->open(ep.protocol(), ec);
  if (ec) return fail("open");
  impl_->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  impl_->acceptor->bind(ep, ec);
  if (ec) return fail("listen on");
  impl_->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  impl_->accept();
  return Status::ok();
}

int HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor ? impl_->acceptor->local_endpoint(ec).port() : 0;
}

void HttpServer::run() {
  for (int i = 1; i < impl_->opt.io_threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

void HttpServer::stop() {
  if (impl_) impl_->ioc.stop();
}

}  // namespace hearth::server
