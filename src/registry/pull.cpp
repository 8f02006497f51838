#include "registry/pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "registry/client.h"
#include "registry/header.h"
#include "registry/hf.h"

namespace hearth::registry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Blob;
class Puller;

// One ranged GET: bytes [start, end) of a blob, written into the partial file at their own
// offsets as they arrive.
struct Part {
  Puller* owner = nullptr;
  Blob* blob = nullptr;
  int64_t start = 0, end = 0;
  int64_t flushed = 0;  // bytes of this part on disk (a prefix)
  int attempt = 0;
  Clock::time_point not_before{};  // backoff
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  bool ignored_range = false;  // the server answered 200 to a ranged request
  char error[CURL_ERROR_SIZE] = {};
};

struct Blob {
  store::Layer layer;
  std::string source;  // the URL asked for the bytes (answered in place or by a redirect)
  std::string hex, path, url;
  bool url_is_registry = true;  // send the registry's token with ranged GETs
  int64_t size = 0;
  int fd = -1;                      // the partial file
  int log_fd = -1;                  // its ranges log (pull.h)
  std::map<int64_t, int64_t> have;  // byte ranges on disk and logged, merged: start -> end
  int64_t next = 0;                 // no part has asked for [next, size) minus `have` yet
  std::list<Part*> active;
  int64_t received = 0;  // for progress: on disk
  int64_t notified = 0;  // the front the hasher was last told about
  bool whole = false;    // the server ignores Range: one stream from 0
  bool done = false;
  int restarts = 0;  // digest mismatches answered by fetching again
  Clock::time_point reported{};
  // Shared with the hasher thread: [0, front) is on disk, so it may be hashed.
  std::atomic<int64_t> front{0};
  std::mutex mu;  // guards the fields below (the hasher holds it while hashing a piece)
  std::unique_ptr<store::Sha256> hash;
  int64_t hashed = 0;  // [0, hashed) went through `hash`
  std::string got;     // the digest, once hashed == size
  Status hash_error;
  std::atomic<bool> hashed_all{false};
};

std::string short_hex(std::string_view hex) {
  return std::string(hex.substr(0, 12));
}

std::string human(int64_t b) {
  char s[32];
  if (b >= (int64_t(1) << 30))
    std::snprintf(s, sizeof s, "%.1f GiB", double(b) / double(int64_t(1) << 30));
  else
    std::snprintf(s, sizeof s, "%.1f MiB", double(b) / double(1 << 20));
  return s;
}

std::string ranges_path(const std::string& partial) {
  return partial + ".ranges";
}

// Adds [s, e) to a set of merged ranges (touching ones joined).
void merge_range(std::map<int64_t, int64_t>& m, int64_t s, int64_t e) {
  if (s >= e) return;
  auto it = m.upper_bound(s);
  if (it != m.begin() && std::prev(it)->second >= s) {
    --it;
    s = it->first;
    e = std::max(e, it->second);
    it = m.erase(it);
  }
  while (it != m.end() && it->first <= e) {
    e = std::max(e, it->second);
    it = m.erase(it);
  }
  m[s] = e;
}

int64_t covered(const std::map<int64_t, int64_t>& m) {
  int64_t n = 0;
  for (const auto& [s, e] : m) n += e - s;
  return n;
}

class Puller {
 public:
  Puller(store::Store& st, Client& client, const ProgressFn& progress)
      : st_(st), client_(client), t_(client.tuning()), progress_(progress) {}
  ~Puller() {
    // What in-flight parts got onto disk is logged, so the next try does not fetch it again.
    for (auto& p : parts_)
      if (p->flushed > 0 && !p->blob->done) log_range(*p->blob, p->start, p->start + p->flushed);
    for (auto& p : parts_) drop_transfer(*p);
    if (multi_) curl_multi_cleanup(multi_);
    for (auto& b : blobs_) {
      if (b->log_fd >= 0) ::close(b->log_fd);
      if (b->fd >= 0) {
        ::flock(b->fd, LOCK_UN);
        ::close(b->fd);
      }
    }
  }

  Status run(const std::vector<BlobSource>& sources, store::Pin& pin,
             const std::function<Status()>& before_first_byte);

 private:
  Status prepare(Blob& b);
  Status resolve(Blob& b);
  bool report(Blob& b, bool force);
  void schedule();
  Status start(std::unique_ptr<Part> p);
  void drop_transfer(Part& p);
  void drop_parts(Blob& b);
  static size_t on_data(char* data, size_t sz, size_t n, void* ud);
  size_t receive(Part& p, const char* data, size_t n);
  void log_range(Blob& b, int64_t s, int64_t e);
  void advance_front(Blob& b, int64_t upto);
  Status finished(Part& p, CURLcode rc);
  Status complete(Blob& b);
  Status restart_blob(Blob& b);
  void hasher();

  store::Store& st_;
  Client& client_;
  const Tuning& t_;
  const ProgressFn& progress_;
  CURLM* multi_ = nullptr;
  std::vector<std::unique_ptr<Blob>> blobs_;
  std::list<std::unique_ptr<Part>> parts_;   // running
  std::deque<std::unique_ptr<Part>> retry_;  // waiting to run again
  std::vector<std::pair<Part*, CURLcode>> done_;
  Status fatal_;
  bool cancelled_ = false;
  size_t rr_ = 0;  // round robin over blobs
  // The hasher thread's wake-ups: `seq_` moves whenever a front moved.
  std::mutex hmu_;
  std::condition_variable hcv_;
  uint64_t seq_ = 0;
  bool stop_ = false;
};

// Opens (or creates) the partial file, locks it against another pull of the same blob, reads
// which ranges an earlier try left on disk, and hashes the prefix of them that starts at byte 0:
// the one read-back of a file a pull does outside the hasher, after a stop.
Status Puller::prepare(Blob& b) {
  std::error_code ec;
  fs::create_directories(st_.downloads_dir(), ec);
  if (ec) return store::io_error("cannot create", st_.downloads_dir(), ec.value());
  b.fd = ::open(b.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (b.fd < 0) return store::io_error("cannot open", b.path, errno);
  // Another pull of this blob (a second client, another process on this store): wait for it.
  while (::flock(b.fd, LOCK_EX | LOCK_NB) != 0) {
    if (!progress_({"pulling " + short_hex(b.hex), b.layer.digest, b.size, 0})) {
      cancelled_ = true;
      return Status(StatusCode::kCancelled, "pull cancelled");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (st_.has_blob(b.layer.digest)) {  // the other pull finished it
    b.done = true;
    b.received = b.size;
    return Status::ok();
  }
  const std::string log = ranges_path(b.path);
  struct stat s {};
  struct stat ls {};
  if (::fstat(b.fd, &s) != 0) return store::io_error("cannot stat", b.path, errno);
  const int64_t on_disk = s.st_size;
  const bool have_log = ::stat(log.c_str(), &ls) == 0;
  if (on_disk > b.size) {  // not this blob's: start over
    if (::ftruncate(b.fd, 0) != 0) return store::io_error("cannot truncate", b.path, errno);
  } else if (!have_log) {
    // No log at all: a partial file from a hearth that wrote only in order, a hashed prefix.
    // (This one creates the log before the first byte, so an empty log means nothing held.)
    if (on_disk > 0) merge_range(b.have, 0, on_disk);
  } else {
    const int lfd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
    if (lfd < 0) return store::io_error("cannot open", log, errno);
    std::vector<int64_t> rec(size_t(ls.st_size) / 16 * 2);  // a torn last record is ignored
    const bool ok =
        rec.empty() || ::pread(lfd, rec.data(), rec.size() * 8, 0) == ssize_t(rec.size() * 8);
    ::close(lfd);
    if (ok)
      for (size_t i = 0; i + 1 < rec.size(); i += 2)
        if (rec[i] >= 0 && rec[i] < rec[i + 1] && rec[i + 1] <= on_disk)
          merge_range(b.have, rec[i], rec[i + 1]);
  }
  // The log rewritten as the merged set (it grows by a record per part otherwise), replaced
  // whole by a rename so a stop at any point leaves the old or the new one.
  {
    std::vector<int64_t> rec;
    for (const auto& [from, to] : b.have) rec.insert(rec.end(), {from, to});
    const std::string tmp = log + ".tmp";
    const int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tfd < 0) return store::io_error("cannot open", tmp, errno);
    const ssize_t want = ssize_t(rec.size() * 8);
    const bool wrote = want == 0 || ::write(tfd, rec.data(), size_t(want)) == want;
    const int err = errno;
    ::close(tfd);
    if (!wrote) return store::io_error("cannot write", tmp, err ? err : ENOSPC);
    if (::rename(tmp.c_str(), log.c_str()) != 0)
      return store::io_error("cannot rename", tmp, errno);
  }
  b.log_fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (b.log_fd < 0) return store::io_error("cannot open", log, errno);
  // Room for a few thousand records kept aside, so a disk that fills up mid-pull still lets the
  // last ones in (what got onto disk before the failed write is then not fetched again).
  (void)::fallocate(b.log_fd, FALLOC_FL_KEEP_SIZE, 0, 64 << 10);
  b.hash = std::make_unique<store::Sha256>();
  const int64_t front = !b.have.empty() && b.have.begin()->first == 0 ? b.have.begin()->second : 0;
  std::vector<char> buf(size_t(1) << 20);
  int64_t off = 0;
  while (off < front) {
    const ssize_t n =
        ::pread(b.fd, buf.data(), size_t(std::min<int64_t>(front - off, 1 << 20)), off);
    if (n <= 0) break;
    b.hash->update(buf.data(), size_t(n));
    off += n;
  }
  if (off < front) return store::io_error("cannot read", b.path, errno ? errno : EIO);
  b.front = b.hashed = b.notified = front;
  b.received = covered(b.have);
  if (front == b.size) {
    b.got = b.hash->hex();
    b.hashed_all = true;
  }
  return Status::ok();
}

// Finds the URL the bytes come from. Registries answer a blob GET with a redirect to storage
// elsewhere (Ollama's to a CDN); asking for one byte without following shows it.
Status Puller::resolve(Blob& b) {
  const std::string& url = b.source;
  HEARTH_ASSIGN_OR_RETURN(Reply r, client_.request("GET", url, {"Range: bytes=0-0"}, "", false));
  if (r.status >= 300 && r.status < 400 && r.headers.count("location")) {
    b.url = resolve_url(url, r.headers["location"]);
  } else if (r.status == 200 || r.status == 206) {
    // Served in place (hearth's own registry, many LAN ones). A Location on a 200 is the direct
    // URL too (as Ollama reads it).
    b.url = r.headers.count("location") ? resolve_url(url, r.headers["location"]) : url;
    if (r.status == 200 && !r.headers.count("location") && b.size > 1) b.whole = true;
  } else if (r.status == 404) {
    return Status(StatusCode::kNotFound,
                  "blob " + b.layer.digest + " not found in the registry (" + url + ")");
  } else {
    return Status(StatusCode::kUnavailable,
                  "blob " + b.layer.digest + ": registry answered " + std::to_string(r.status));
  }
  b.url_is_registry = url_host(b.url) == url_host(url);
  return Status::ok();
}

bool Puller::report(Blob& b, bool force) {
  const auto now = Clock::now();
  if (!force && now - b.reported < std::chrono::milliseconds(100)) return true;
  b.reported = now;
  return progress_(
      {"pulling " + short_hex(b.hex), b.layer.digest, b.size, std::min(b.received, b.size)});
}

void Puller::drop_transfer(Part& p) {
  if (p.easy) {
    curl_multi_remove_handle(multi_, p.easy);
    curl_easy_cleanup(p.easy);
    p.easy = nullptr;
  }
  if (p.headers) {
    curl_slist_free_all(p.headers);
    p.headers = nullptr;
  }
}

// Ends every transfer of blob b, running or waiting to run again.
void Puller::drop_parts(Blob& b) {
  for (Part* q : std::vector<Part*>(b.active.begin(), b.active.end())) {
    drop_transfer(*q);
    for (auto it = parts_.begin(); it != parts_.end(); ++it)
      if (it->get() == q) {
        parts_.erase(it);
        break;
      }
  }
  b.active.clear();
  std::erase_if(retry_, [&](const std::unique_ptr<Part>& q) { return q->blob == &b; });
}

size_t Puller::on_data(char* data, size_t sz, size_t n, void* ud) {
  auto* p = static_cast<Part*>(ud);
  return p->owner->receive(*p, data, sz * n);
}

// Bytes for part p, written at their place in the partial file straight from curl's buffer (no
// copy in between); hashing is the hasher thread's. Returning less than n aborts the transfer
// (curl reports a write error), which is how a bad answer or a failed write stops a part.
size_t Puller::receive(Part& p, const char* data, size_t n) {
  Blob& b = *p.blob;
  long code = 0;
  curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &code);
  if (code != 206 && code != 200) return 0;  // an error page: finished() decides what next
  if (code == 200 && !b.whole && !(p.start == 0 && p.end == b.size)) {
    p.ignored_range = true;  // a full body to a ranged request
    return 0;
  }
  if (p.start + p.flushed + int64_t(n) > p.end) return 0;  // too long
  size_t off = 0;
  while (off < n) {
    const ssize_t w = ::pwrite(b.fd, data + off, n - off, p.start + p.flushed + int64_t(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fatal_ = store::io_error("cannot write", b.path, errno);
      return 0;
    }
    off += size_t(w);
  }
  const int64_t f = b.front.load(std::memory_order_relaxed);
  p.flushed += int64_t(n);
  b.received += int64_t(n);
  if (p.start <= f && p.start + p.flushed > f) advance_front(b, p.start + p.flushed);
  report(b, false);
  return n;
}

void Puller::log_range(Blob& b, int64_t s, int64_t e) {
  const int64_t rec[2] = {s, e};
  // Best effort: a lost record only means those bytes are fetched again after a stop.
  if (b.log_fd >= 0 && ::write(b.log_fd, rec, sizeof rec) != ssize_t(sizeof rec)) {
  }
}

// Bytes up to `upto` are on disk from byte 0: the front moves there, and past logged ranges it
// now touches; the hasher is told once a MiB or more is waiting for it (and at the end).
void Puller::advance_front(Blob& b, int64_t upto) {
  auto it = b.have.upper_bound(upto);
  if (it != b.have.begin() && std::prev(it)->second > upto) upto = std::prev(it)->second;
  b.front.store(upto, std::memory_order_release);
  if (upto - b.notified >= (1 << 20) || upto == b.size) {
    b.notified = upto;
    {
      std::lock_guard<std::mutex> g(hmu_);
      ++seq_;
    }
    hcv_.notify_one();
  }
}

// The hasher thread: feeds each blob's SHA-256 with the bytes behind its front, read back from
// the page cache right after they were written (the disk is not read: the pages are still in
// memory), so the digest is ready a moment after the last byte lands and the network thread
// never waits for it.
void Puller::hasher() {
  std::vector<char> buf(size_t(4) << 20);
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> g(hmu_);
      if (stop_) return;
      seen = seq_;
    }
    bool worked = false;
    for (auto& bp : blobs_) {
      Blob& b = *bp;
      std::lock_guard<std::mutex> g(b.mu);
      if (!b.hash || b.hashed_all.load() || !b.hash_error.is_ok()) continue;
      const int64_t f = b.front.load(std::memory_order_acquire);
      if (b.hashed < f) {
        const size_t want = size_t(std::min<int64_t>(f - b.hashed, int64_t(buf.size())));
        const ssize_t n = ::pread(b.fd, buf.data(), want, b.hashed);
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          b.hash_error = store::io_error("cannot read", b.path, n < 0 ? errno : EIO);
          curl_multi_wakeup(multi_);
          continue;
        }
        b.hash->update(buf.data(), size_t(n));
        b.hashed += n;
        worked = true;
      }
      if (b.hashed == b.size) {
        b.got = b.hash->hex();
        b.hashed_all.store(true);
        curl_multi_wakeup(multi_);
      }
    }
    if (!worked) {
      std::unique_lock<std::mutex> lk(hmu_);
      hcv_.wait_for(lk, std::chrono::milliseconds(50), [&] { return stop_ || seq_ != seen; });
    }
  }
}

Status Puller::start(std::unique_ptr<Part> p) {
  Blob& b = *p->blob;
  p->owner = this;
  p->easy = curl_easy_init();
  if (!p->easy) return Status(StatusCode::kInternal, "curl_easy_init failed");
  const int64_t from = p->start + p->flushed;
  if (!b.whole) {
    const std::string range =
        "Range: bytes=" + std::to_string(from) + "-" + std::to_string(p->end - 1);
    p->headers = curl_slist_append(p->headers, range.c_str());
  }
  if (b.url_is_registry)
    for (const auto& h : client_.auth_headers(b.url))
      p->headers = curl_slist_append(p->headers, h.c_str());
  const std::string ua = "User-Agent: " + user_agent();
  p->headers = curl_slist_append(p->headers, ua.c_str());
  CURL* e = p->easy;
  curl_easy_setopt(e, CURLOPT_URL, b.url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Puller::on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, p.get());
  curl_easy_setopt(e, CURLOPT_PRIVATE, p.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->error);
  // A part that receives nothing for stall_seconds is restarted (not counted as a retry).
  set_transfer_options(e, t_, true);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
  b.active.push_back(p.get());
  curl_multi_add_handle(multi_, e);
  parts_.push_back(std::move(p));
  return Status::ok();
}

// Starts parts while there is room: retries whose wait is over first, then new parts, round
// robin over the blobs so every layer moves at once. Ranges an earlier try left on disk are
// skipped. Parts ahead of a blob's front cost no memory (they go to the file), so there is no
// window: the hasher catches up once the front part lands.
void Puller::schedule() {
  const auto now = Clock::now();
  for (auto it = retry_.begin(); it != retry_.end() && int(parts_.size()) < t_.max_streams;) {
    if ((*it)->not_before <= now) {
      auto p = std::move(*it);
      it = retry_.erase(it);
      if (Status s = start(std::move(p)); !s.is_ok()) fatal_ = s;
    } else {
      ++it;
    }
  }
  for (size_t tries = 0; tries < blobs_.size() && int(parts_.size()) < t_.max_streams;) {
    Blob& b = *blobs_[rr_ % blobs_.size()];
    ++rr_;
    // Past what is on disk already.
    auto in = b.have.upper_bound(b.next);
    if (in != b.have.begin() && std::prev(in)->second > b.next) b.next = std::prev(in)->second;
    const bool room = !b.done && b.next < b.size && !(b.whole && b.next > 0);
    if (!room) {
      ++tries;
      continue;
    }
    tries = 0;
    auto p = std::make_unique<Part>();
    p->blob = &b;
    p->start = b.next;
    p->end = b.whole ? b.size : std::min(b.size, b.next + t_.part_bytes);
    if (auto after = b.have.upper_bound(b.next); after != b.have.end() && !b.whole)
      p->end = std::min(p->end, after->first);
    b.next = p->end;
    if (Status s = start(std::move(p)); !s.is_ok()) {
      fatal_ = s;
      return;
    }
  }
}

// A transfer ended: done, or to be tried again from where it got to.
Status Puller::finished(Part& p, CURLcode rc) {
  Blob& b = *p.blob;
  long code = 0;
  curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &code);
  b.active.remove(&p);
  std::unique_ptr<Part> own;
  for (auto it = parts_.begin(); it != parts_.end(); ++it)
    if (it->get() == &p) {
      own = std::move(*it);
      parts_.erase(it);
      break;
    }
  drop_transfer(p);
  if (!fatal_.is_ok()) return fatal_;
  if (b.done) return Status::ok();
  // What arrived is on disk: logged, so a stop from here on does not lose it.
  if (p.flushed > 0) {
    merge_range(b.have, p.start, p.start + p.flushed);
    log_range(b, p.start, p.start + p.flushed);
    // A part ahead that got all its bytes before the front reached it moves the front now.
    const int64_t f = b.front.load(std::memory_order_relaxed);
    if (p.start <= f) advance_front(b, std::max(f, p.start + p.flushed));
  }
  if (rc == CURLE_OK && (code == 206 || code == 200) && p.start + p.flushed == p.end)
    return Status::ok();  // the hasher finishes the blob once its front reaches the end
  if (p.ignored_range) {
    // The server ignores Range: this blob comes in one stream from the start.
    std::fprintf(stderr, "hearth: pull: %s ignores Range; fetching %s in one stream\n",
                 url_host(b.url).c_str(), short_hex(b.hex).c_str());
    b.whole = true;
    return restart_blob(b);
  }
  const bool stalled = rc == CURLE_OPERATION_TIMEDOUT;
  const bool client_error = code >= 400 && code < 500 && code != 429 && code != 408;
  std::string why = code >= 300      ? "HTTP " + std::to_string(code)
                    : rc != CURLE_OK ? std::string(p.error[0] ? p.error : curl_easy_strerror(rc))
                                     : "connection closed early";
  if (!stalled) ++own->attempt;
  if (own->attempt > t_.retries)
    return Status(StatusCode::kUnavailable, "pulling " + short_hex(b.hex) + ": " + why +
                                                " (gave up after " + std::to_string(t_.retries) +
                                                " retries)");
  if (client_error) {
    // A direct URL that expired (signed storage URLs do) or a token that did: ask again.
    if (Status s = resolve(b); !s.is_ok()) return s;
  }
  std::fprintf(stderr, "hearth: pull: part %lld-%lld of %s: %s; %s\n",
               static_cast<long long>(p.start + p.flushed), static_cast<long long>(p.end - 1),
               short_hex(b.hex).c_str(), why.c_str(), stalled ? "restarting" : "retrying");
  const int64_t wait_ms = stalled ? 0 : int64_t(t_.backoff_ms) << std::min(own->attempt - 1, 5);
  own->not_before = Clock::now() + std::chrono::milliseconds(wait_ms);
  if (b.whole) return restart_blob(b);
  own->start += own->flushed;  // the rest of the part
  own->flushed = 0;
  own->ignored_range = false;
  own->error[0] = 0;
  retry_.push_back(std::move(own));
  return Status::ok();
}

// Starts a blob over from byte 0 (its server ignores Range, or its digest did not match).
Status Puller::restart_blob(Blob& b) {
  drop_parts(b);
  std::lock_guard<std::mutex> g(b.mu);  // the hasher is not inside this blob meanwhile
  if (::ftruncate(b.fd, 0) != 0) return store::io_error("cannot truncate", b.path, errno);
  if (::ftruncate(b.log_fd, 0) != 0)
    return store::io_error("cannot truncate", ranges_path(b.path), errno);
  b.have.clear();
  b.hash = std::make_unique<store::Sha256>();
  b.hashed = 0;
  b.got.clear();
  b.hash_error = Status::ok();
  b.hashed_all = false;
  b.front = 0;
  b.next = b.received = b.notified = 0;
  return Status::ok();
}

// Every byte is in and hashed (the hasher computed the digest on the way): compare, rename.
Status Puller::complete(Blob& b) {
  if (b.done) return Status::ok();
  std::string got;
  {
    std::lock_guard<std::mutex> g(b.mu);
    got = b.got;
  }
  if (got != b.hex) {
    // Corrupted in transit (or a partial file damaged on disk): fetch it once more from scratch.
    std::fprintf(stderr, "hearth: pull: %s: digest mismatch (got sha256:%s)%s\n",
                 b.layer.digest.c_str(), got.c_str(), b.restarts == 0 ? "; fetching again" : "");
    if (b.restarts++ == 0) return restart_blob(b);
    HEARTH_RETURN_IF_ERROR(restart_blob(b));  // nothing of it is kept
    return Status(StatusCode::kCorrupt, "digest mismatch, file must be downloaded again: want " +
                                            b.layer.digest + ", got sha256:" + got);
  }
  drop_parts(b);  // transfers curl has not reported finished yet: their bytes are all in
  HEARTH_RETURN_IF_ERROR(st_.install_blob(b.path, b.hex));
  ::unlink(ranges_path(b.path).c_str());
  ::close(b.log_fd);
  b.log_fd = -1;
  ::flock(b.fd, LOCK_UN);
  ::close(b.fd);
  b.fd = -1;
  b.done = true;
  b.received = b.size;
  if (!report(b, true)) cancelled_ = true;
  return Status::ok();
}

Status Puller::run(const std::vector<BlobSource>& sources, store::Pin& pin,
                   const std::function<Status()>& before_first_byte) {
  int64_t need = 0;
  for (const BlobSource& src : sources) {
    const store::Layer* l = &src.layer;
    pin.add(l->digest);
    auto b = std::make_unique<Blob>();
    b->layer = *l;
    b->source = src.url;
    HEARTH_ASSIGN_OR_RETURN(b->hex, store::digest_hex(l->digest));
    b->size = std::max<int64_t>(0, l->size);
    b->path = partial_path(st_, b->hex);
    if (std::any_of(blobs_.begin(), blobs_.end(), [&](const auto& x) { return x->hex == b->hex; }))
      continue;  // the same blob twice in one manifest
    if (st_.has_blob(l->digest)) {
      b->done = true;
      b->received = b->size;
      if (!report(*b, true)) return Status(StatusCode::kCancelled, "pull cancelled");
      continue;
    }
    HEARTH_RETURN_IF_ERROR(prepare(*b));
    if (!b->done) need += b->size - covered(b->have);
    blobs_.push_back(std::move(b));
  }
  // Room for what is still to come, checked before the first byte (a full disk later is still
  // caught by the write that hits it).
  struct statvfs fsinfo {};
  if (need > 0 && ::statvfs(st_.downloads_dir().c_str(), &fsinfo) == 0) {
    const int64_t free_bytes = int64_t(fsinfo.f_bavail) * int64_t(fsinfo.f_frsize);
    if (free_bytes < need)
      return Status(StatusCode::kNoSpace, "not enough disk space to pull: " + human(need) +
                                              " needed, " + human(free_bytes) + " free in " +
                                              st_.root());
  }
  if (before_first_byte)
    if (Status refused = before_first_byte(); !refused.is_ok()) {
      for (auto& b : blobs_)  // no junk left: empty partial files this pull opened
        if (!b->done && b->have.empty()) {
          ::unlink(b->path.c_str());
          ::unlink(ranges_path(b->path).c_str());
        }
      return refused;
    }
  for (auto& b : blobs_) {
    if (b->done) continue;
    if (b->size == 0) {  // nothing to fetch: the empty blob's digest is checked all the same
      HEARTH_RETURN_IF_ERROR(complete(*b));
      continue;
    }
    HEARTH_RETURN_IF_ERROR(resolve(*b));
    if (b->whole && !b->have.empty()) HEARTH_RETURN_IF_ERROR(restart_blob(*b));
    if (b->hashed_all)
      HEARTH_RETURN_IF_ERROR(complete(*b));
    else if (!report(*b, true))
      return Status(StatusCode::kCancelled, "pull cancelled");
  }
  multi_ = curl_multi_init();
  if (!multi_) return Status(StatusCode::kInternal, "curl_multi_init failed");
  std::thread hashing([this] { hasher(); });
  struct Join {
    Puller* self;
    std::thread& t;
    ~Join() {
      {
        std::lock_guard<std::mutex> g(self->hmu_);
        self->stop_ = true;
      }
      self->hcv_.notify_one();
      t.join();
    }
  } join{this, hashing};
  while (fatal_.is_ok() && !cancelled_) {
    if (std::all_of(blobs_.begin(), blobs_.end(), [](const auto& b) { return b->done; })) break;
    schedule();
    if (!fatal_.is_ok()) break;
    int running = 0;
    curl_multi_perform(multi_, &running);
    // Every finished transfer first: handling one may remove others' handles (a blob started
    // over), which invalidates their queued messages.
    int left = 0;
    done_.clear();
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Part* p = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
      done_.push_back({p, msg->data.result});
    }
    // (Plain variables, not structured bindings: clang 14 cannot capture those in a lambda.)
    for (const auto& d : done_) {
      Part* p = d.first;
      const CURLcode rc = d.second;
      if (!std::any_of(parts_.begin(), parts_.end(), [&](const auto& q) { return q.get() == p; }))
        continue;  // dropped meanwhile
      if (Status s = finished(*p, rc); !s.is_ok()) {
        fatal_ = s;
        break;
      }
    }
    if (!fatal_.is_ok()) break;
    for (auto& b : blobs_) {
      if (b->done) continue;
      if (b->hashed_all.load()) {
        if (Status s = complete(*b); !s.is_ok()) {
          fatal_ = s;
          break;
        }
        continue;
      }
      {
        std::lock_guard<std::mutex> g(b->mu);
        if (!b->hash_error.is_ok()) {
          fatal_ = b->hash_error;
          break;
        }
      }
      if (!report(*b, false)) cancelled_ = true;
    }
    if (!fatal_.is_ok()) break;
    curl_multi_poll(multi_, nullptr, 0, parts_.empty() ? 20 : 100, nullptr);
  }
  if (cancelled_) return Status(StatusCode::kCancelled, "pull cancelled");
  return fatal_;
}

}  // namespace

Status fetch_blobs(store::Store& st, Client& client, const std::vector<BlobSource>& blobs,
                   store::Pin& pin, const ProgressFn& progress,
                   const std::function<Status()>& before_first_byte) {
  Puller puller(st, client, progress);
  return puller.run(blobs, pin, before_first_byte);
}

std::string partial_path(const store::Store& st, std::string_view hex) {
  return st.downloads_dir() + "/sha256-" + std::string(hex) + ".partial";
}

Status pull(store::Store& st, std::string_view name, const PullOptions& opts,
            const ProgressFn& progress) {
  HEARTH_ASSIGN_OR_RETURN(Endpoint ep, Endpoint::parse(name, opts.insecure));
  // Hugging Face names resolve through its API (registry/hf.h), not a registry's manifests.
  if (is_hf_host(ep.name.host)) return pull_hf(st, ep.name, progress);
  Client client(ep);
  if (!progress({"pulling manifest", "", 0, 0}))
    return Status(StatusCode::kCancelled, "pull cancelled");
  HEARTH_ASSIGN_OR_RETURN(
      Reply r,
      client.request("GET", ep.manifest_url(), {std::string("Accept: ") + store::kMediaManifest}));
  if (r.status == 404)
    return Status(StatusCode::kNotFound,
                  "pull model manifest: model \"" + ep.name.display() + "\" not found");
  if (r.status != 200)
    return Status(
        r.status == 401 || r.status == 403 ? StatusCode::kPermissionDenied
                                           : StatusCode::kUnavailable,
        "pull model manifest: " + std::to_string(r.status) + ": " + r.body.substr(0, 512));
  auto m = store::Manifest::parse(r.body);
  if (!m) return Status(StatusCode::kCorrupt, "pull model manifest: " + m.status().message());
  // The tag's previous version: blobs only it used go once the new manifest is in place.
  const std::vector<std::string> old = previous_blobs(st, ep.name);
  std::optional<store::Pin> pin(std::in_place, st);
  std::vector<BlobSource> sources;
  for (const auto& l : m->layers) sources.push_back({l, ep.blob_url(l.digest)});
  sources.push_back({m->config, ep.blob_url(m->config.digest)});
  std::vector<std::string> fresh;  // blobs this pull adds to the store
  for (const auto& s : sources)
    if (!st.has_blob(s.layer.digest)) fresh.push_back(s.layer.digest);
  // The fit check runs once the disk is known to have room, before the first byte.
  auto check = [&]() -> Status {
    if (!opts.check) return Status::ok();
    const store::Layer* model = m->find(store::kMediaModel);
    if (!model || st.has_blob(model->digest)) return Status::ok();
    std::shared_ptr<const std::vector<uint8_t>> keep;  // what the header points into
    auto header = [&]() -> Result<std::shared_ptr<gguf::GgufFile>> {
      HEARTH_ASSIGN_OR_RETURN(RemoteHeader h, fetch_header(client, ep, *m));
      keep = h.bytes;
      return h.header;
    };
    return opts.check(model->size, header);
  };
  // A full disk: the blobs this pull completed go (nothing references them, and the space is
  // wanted); a partial file stays under downloads/ so that pulling again resumes from it.
  auto no_space = [&](const Status& s) {
    pin.reset();
    (void)st.prune(fresh);
    if (s.message().rfind("not enough disk space", 0) == 0) return s;  // refused before a byte
    return Status(StatusCode::kNoSpace,
                  "not enough disk space to finish the pull (" + s.message() +
                      "); what was downloaded is kept in " + st.downloads_dir() +
                      " and pulling again once there is room resumes from it");
  };
  if (Status s = fetch_blobs(st, client, sources, *pin, progress, check); !s.is_ok())
    return s.code() == StatusCode::kNoSpace ? no_space(s) : s;  // other failures keep blobs
  if (!progress({"verifying sha256 digest", "", 0, 0}))
    return Status(StatusCode::kCancelled, "pull cancelled");
  if (!progress({"writing manifest", "", 0, 0}))
    return Status(StatusCode::kCancelled, "pull cancelled");
  if (Status s = st.write_manifest_bytes(ep.name, r.body); !s.is_ok())
    return s.code() == StatusCode::kNoSpace ? no_space(s) : s;
  finish_pull(st, old, progress);
  return Status::ok();
}

std::vector<std::string> previous_blobs(const store::Store& st, const store::ModelName& name) {
  std::vector<std::string> old;
  if (auto prev = st.read_manifest(name)) {
    old.push_back(prev->config.digest);
    for (const auto& l : prev->layers) old.push_back(l.digest);
  }
  return old;
}

void finish_pull(store::Store& st, const std::vector<std::string>& previous,
                 const ProgressFn& progress) {
  if (!previous.empty()) {
    progress({"removing unused layers", "", 0, 0});
    (void)st.prune(previous);
  }
  progress({"success", "", 0, 0});
}

}  // namespace hearth::registry
