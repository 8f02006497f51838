#include "server/http.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

#include "server/access.h"
#include "server/auth.h"
#include "server/beast_request.h"
#include "server/errors.h"

namespace hearth::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kErrorWriteTimeout = std::chrono::seconds(10);

class Session;

// What every session shares: options, the handler, the worker pool.
struct Shared {
  ServerOptions opt;
  Handler handler;
  std::unique_ptr<net::thread_pool> workers;
};

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
  Session(tcp::socket&& s, const Shared& sh)
      : stream_(std::move(s)), timer_(stream_.get_executor()), sh_(sh), opt_(sh.opt) {}

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
      if (self->waiting_) {
        self->waiting_ = false;
        self->stream_.socket().cancel();  // stop watch_peer
      }
      // An answer the client does not read must not hold the connection forever.
      self->stream_.expires_after(self->opt_.idle_timeout);
      auto done = [self, keep_alive](beast::error_code ec, size_t) {
        if (ec) return self->close();
        if (!keep_alive) return self->drain_and_close();
        self->read_header();
      };
      auto fill = [&](auto& res) {
        res.set(http::field::server, "hearth");
        res.set(http::field::content_type, r.content_type);
        for (auto& [k, v] : self->cors_) res.set(k, v);
        for (auto& [k, v] : r.headers) res.set(k, v);
        res.keep_alive(keep_alive);
      };
      if (self->head_request_ || r.file) {
        // HEAD: the headers a GET would get, no body (a body would be read as the start of
        // the next answer on this connection). A file body follows its header piece by piece.
        auto res =
            std::make_shared<http::response<http::empty_body>>(http::status(r.status), version);
        fill(*res);
        res->content_length(r.file ? r.file->length : r.body.size());
        if (r.file && !self->head_request_) {
          auto file = r.file;
          http::async_write(self->stream_, *res,
                            [self, res, file, done](beast::error_code ec, size_t n) {
                              if (ec) return done(ec, n);
                              self->send_file(file, 0, done);
                            });
          return;
        }
        http::async_write(self->stream_, *res,
                          [res, done](beast::error_code ec, size_t n) { done(ec, n); });
        return;
      }
      auto res =
          std::make_shared<http::response<http::string_body>>(http::status(r.status), version);
      fill(*res);
      res->body() = std::move(r.body);
      res->prepare_payload();
      http::async_write(self->stream_, *res,
                        [res, done](beast::error_code ec, size_t n) { done(ec, n); });
    });
  }

  // Sends file->length bytes of the file from file->offset with sendfile(2): the kernel moves
  // page-cache pages to the socket, no copy through this process (a registry serving blobs to a
  // LAN). When the socket is full, waits until it is writable again, so a slow client holds no
  // buffer and no thread.
  template <class Done>
  void send_file(std::shared_ptr<FileBody> file, uint64_t sent, Done done) {
    auto& sock = stream_.socket();
    beast::error_code ec;
    sock.native_non_blocking(true, ec);
    uint64_t this_turn = 0;
    while (!ec && sent < file->length) {
      if (this_turn >= (uint64_t(64) << 20)) {  // a fast reader: let this thread's others run
        net::post(stream_.get_executor(), [self = shared_from_this(), file, sent, done] {
          self->send_file(file, sent, done);
        });
        return;
      }
      off_t off = off_t(file->offset + sent);
      const size_t want = size_t(std::min<uint64_t>(file->length - sent, uint64_t(1) << 30));
      const ssize_t n = ::sendfile(sock.native_handle(), file->fd, &off, want);
      if (n > 0) {
        sent += uint64_t(n);
        this_turn += uint64_t(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        arm(opt_.idle_timeout);  // a client that stops reading is dropped
        sock.async_wait(tcp::socket::wait_write,
                        [self = shared_from_this(), file, sent, done](beast::error_code wec) {
                          self->disarm();
                          if (wec) return self->close();
                          self->send_file(file, sent, done);
                        });
        return;
      }
      // n == 0: the file shrank under us; n < 0: the peer left or the file failed. The length
      // promised cannot be kept either way.
      if (n == 0)
        std::fprintf(stderr, "hearth: reading a blob to send failed; closing the connection\n");
      return close();
    }
    if (ec) return close();
    done(beast::error_code{}, 0);
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
      for (auto& [k, v] : self->cors_) res->set(k, v);
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
    disarm();
    upload_.reset();  // an unfinished upload's temporary file goes now
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  // After an answer sent before the body was read (403, 413, ...): stop sending, then read and
  // drop what the client still sends so it gets to read the answer instead of a reset.
  void drain_and_close() {
    upload_.reset();
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

  // Our own deadline (not tcp_stream's, which closes the socket): on expiry the pending read is
  // cancelled and the client still gets a 408 if it had started a request.
  void arm(std::chrono::steady_clock::duration d) {
    timed_out_ = false;
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      // Cancelled, re-armed, or disarmed after it had already fired: not for this read.
      if (ec || gen != self->timer_gen_) return;
      self->timed_out_ = true;
      beast::error_code e;
      self->stream_.socket().cancel(e);
    });
  }

  void read_header() {
    cors_.clear();
    head_request_ = false;
    upload_.reset();
    header_parser_.emplace();
    header_parser_->header_limit(64 * 1024);
    // Each body parser sets its own limit. (Not boost::none: Beast 1.74 compares the length
    // against the optional and an empty optional always loses.)
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_never();
    arm(opt_.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // A request the parser rejected or that stalled: a JSON answer, then the connection closes.
  bool reply_read_error(beast::error_code ec, bool started) {
    if (timed_out_) {
      if (!started) return close(), true;  // an idle keep-alive connection: just close
      reply_error(408, "request timed out: the client stopped sending");
      return true;
    }
    if (ec == http::error::header_limit) {
      reply_error(431, "request header fields too large (limit 64 KiB)");
      return true;
    }
    if (ec == http::error::body_limit) {
      reply_error(413,
                  "request body too large (limit " + std::to_string(opt_.max_body >> 20) + " MiB)");
      return true;
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reply_error(400, "malformed HTTP request: " + ec.message());
      return true;
    }
    close();
    return true;
  }

  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  void on_header(beast::error_code ec) {
    disarm();
    if (ec) {
      reply_read_error(ec, buffer_.size() > 0);
      return;
    }
    HttpRequest head = to_request(header_parser_->get());
    const auto& h = header_parser_->get();
    head_request_ = h.method() == http::verb::head;
    // Browser rules before anything else is read or done.
    const std::string origin = head.header("origin");
    if (opt_.access) {
      if (Status st = opt_.access->check(head.header("host"), origin); !st)
        return reply_error(http_status(st.code()), st.message());
      cors_ = opt_.access->cors_headers(origin);
      if (h.method() == http::verb::options) {
        HttpResponse r;
        r.status = 204;
        r.content_type = "text/plain; charset=utf-8";
        if (!head.header("access-control-request-method").empty())
          for (auto& kv : opt_.access->preflight_headers(origin)) r.headers.push_back(kv);
        return send_response(std::move(r), h.keep_alive() && !has_body(), h.version());
      }
    }
    if (opt_.api_key && !is_public_request(head.method, head.path)) {
      const std::string auth = head.header("authorization");
      if (!opt_.api_key->matches(auth)) {
        stream_.expires_after(kErrorWriteTimeout);
        return send_response(unauthorized_response(head.path, !auth.empty()), false, h.version());
      }
    }
    if (opt_.upload && h.method() != http::verb::get && h.method() != http::verb::head) {
      UploadDecision d = opt_.upload(head);
      if (d.answer) return send_response(std::move(*d.answer), false, h.version());
      if (d.sink) {
        upload_ = std::move(d.sink);
        upload_parser_.emplace(std::move(*header_parser_));
        upload_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
        if (!chunk_) chunk_ = std::make_unique<std::array<char, 256 * 1024>>();
        return read_upload();
      }
    }
    if (auto len = header_parser_->content_length(); len && *len > opt_.max_body)
      return reply_error(
          413, "request body too large (limit " + std::to_string(opt_.max_body >> 20) + " MiB)");
    body_parser_.emplace(std::move(*header_parser_));
    body_parser_->body_limit(opt_.max_body);
    arm(opt_.body_timeout);
    http::async_read(stream_, buffer_, *body_parser_,
                     [self = shared_from_this()](beast::error_code ec2, size_t) {
                       self->disarm();
                       if (ec2) {
                         self->reply_read_error(ec2, true);
                         return;
                       }
                       auto& m = self->body_parser_->get();
                       HttpRequest req = to_request(m);
                       req.body = std::move(m.body());
                       self->dispatch(std::move(req), m.keep_alive(), m.version());
                     });
  }

  bool has_body() const {
    const auto& p = *header_parser_;
    return p.chunked() || (p.content_length() && *p.content_length() > 0);
  }

  // An upload arrives piece by piece into the sink, each read with its own idle deadline.
  void read_upload() {
    auto& body = upload_parser_->get().body();
    body.data = chunk_->data();
    body.size = chunk_->size();
    body.more = true;
    arm(opt_.upload_idle_timeout);
    http::async_read_some(
        stream_, buffer_, *upload_parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_upload(ec); });
  }

  void on_upload(beast::error_code ec) {
    disarm();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      reply_read_error(ec, true);
      return;
    }
    auto& body = upload_parser_->get().body();
    const size_t got = chunk_->size() - body.size;
    if (got == 0) return after_upload_write(Status::ok());
    // The write (and its hash) runs on a worker: a write into the page cache can block for tens
    // of milliseconds under writeback throttling, which must not stall other clients. The next
    // piece is read only after it, so the buffer is not reused early and a slow disk slows
    // only this client (TCP backpressure).
    net::post(*sh_.workers, [self = shared_from_this(), sink = upload_, got] {
      Status st = sink->write(self->chunk_->data(), got);
      net::post(self->stream_.get_executor(),
                [self, st = std::move(st)] { self->after_upload_write(st); });
    });
  }

  void after_upload_write(const Status& st) {
    if (closed_ || !upload_) return;
    if (!st) {
      upload_.reset();
      return send_response(error_response(st), false, upload_parser_->get().version());
    }
    if (!upload_parser_->is_done()) return read_upload();
    auto& m = upload_parser_->get();
    HttpRequest req = to_request(m);
    req.upload = std::move(upload_);
    dispatch(std::move(req), m.keep_alive(), m.version());
  }

  void reply_error(int status, const std::string& msg) {
    stream_.expires_after(kErrorWriteTimeout);
    send_response(json_error(status, msg), false, 11);
  }

  // Runs the handler on the worker pool; an exception is logged and answered as a plain 500
  // (its text may name files or internals: it is not for the client).
  void dispatch(HttpRequest req, bool keep_alive, unsigned version) {
    stream_.expires_never();  // handlers may take a while (model load); the client waits
    auto responder = std::make_shared<SessionResponder>(shared_from_this(), keep_alive, version);
    net::post(*sh_.workers, [self = shared_from_this(), req = std::move(req), responder]() {
      try {
        self->sh_.handler(req, responder);
      } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "hearth: %s %s: out of memory\n", req.method.c_str(),
                     req.path.c_str());
        responder->send(json_error(500, "out of memory while handling the request"));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth: %s %s: internal error: %s\n", req.method.c_str(),
                     req.path.c_str(), e.what());
        responder->send(json_error(500, "internal error"));
      }
    });
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  const Shared& sh_;
  const ServerOptions& opt_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> body_parser_;
  std::optional<http::request_parser<http::buffer_body>> upload_parser_;
  std::shared_ptr<UploadSink> upload_;
  std::unique_ptr<std::array<char, 256 * 1024>> chunk_;    // only while uploading
  std::vector<std::pair<std::string, std::string>> cors_;  // for the current request's answer
  bool timed_out_ = false;
  bool head_request_ = false;  // the current request is a HEAD: answers carry no body
  uint64_t timer_gen_ = 0;
  // Streaming state (touched only on the strand, except closed_).
  std::deque<std::string> queue_;
  bool streaming_ = false, writing_ = false, ending_ = false, keep_alive_ = true;
  bool waiting_ = false;  // a handler is working on a non-streamed answer
  std::atomic<bool> closed_{false};
};

}  // namespace

FileBody::~FileBody() {
  if (fd >= 0) ::close(fd);
}

namespace {

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
  Shared shared;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_pause;
  std::vector<std::thread> threads;

  void accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session>(std::move(s), shared)->start();
        return accept();
      }
      // Out of file descriptors (or another accept failure): retrying at once would spin; wait
      // a little for connections to close.
      std::fprintf(stderr, "hearth: accept failed: %s; retrying in 100 ms\n", ec.message().c_str());
      accept_pause->expires_after(std::chrono::milliseconds(100));
      accept_pause->async_wait([this](beast::error_code e) {
        if (!e) accept();
      });
    });
  }
};

HttpServer::HttpServer(ServerOptions o, Handler h) : impl_(std::make_unique<Impl>()) {
  impl_->shared.opt = std::move(o);
  impl_->shared.handler = std::move(h);
  impl_->shared.workers =
      std::make_unique<net::thread_pool>(size_t(std::max(1, impl_->shared.opt.worker_threads)));
  impl_->accept_pause.emplace(impl_->ioc);
}

Status HttpServer::start() {
  beast::error_code ec;
  auto addr = net::ip::make_address(impl_->shared.opt.host, ec);
  if (ec) {  // a host name ("localhost"): resolve it, preferring IPv4 as Ollama's listener does
    tcp::resolver resolver(impl_->ioc);
    const auto results = resolver.resolve(impl_->shared.opt.host, "", ec);
    if (ec || results.empty())
      return invalid_argument("invalid listen address '" + impl_->shared.opt.host +
                              "': not an IP address or a host name that resolves");
    addr = results.begin()->endpoint().address();
    for (const auto& r : results)
      if (r.endpoint().address().is_v4()) {
        addr = r.endpoint().address();
        break;
      }
  }
  const tcp::endpoint ep(addr, uint16_t(impl_->shared.opt.port));
  impl_->acceptor.emplace(impl_->ioc);
  auto fail = [&](const char* what) {
    return Status(StatusCode::kUnavailable,
                  std::string("cannot ") + what + " " + impl_->shared.opt.host + ":" +
                      std::to_string(impl_->shared.opt.port) + ": " + ec.message());
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
  for (int i = 1; i < impl_->shared.opt.io_threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

void HttpServer::stop() {
  if (impl_) impl_->ioc.stop();
}

HttpServer::~HttpServer() {
  stop();
  if (impl_ && impl_->shared.workers) impl_->shared.workers->join();
}

}  // namespace hearth::server
