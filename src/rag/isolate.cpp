#include "rag/isolate.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "rag/ingest.h"

extern char** environ;

namespace hearth::rag {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// write() to a child that may have exited (a crash, or one that stops reading): EPIPE instead of
// a SIGPIPE that would end this whole process where nobody ignores it. SIGPIPE is blocked in this
// thread for the call and a pending one (this write's) consumed before the mask is restored.
ssize_t write_no_sigpipe(int fd, const void* p, size_t n) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, p, n);
  const int saved = errno;
  if (w < 0 && saved == EPIPE) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

}  // namespace

// AddressSanitizer and ThreadSanitizer reserve terabytes of address space for their shadow at
// start: under them an address-space cap would fail every allocation, so only CPU time is capped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEARTH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HEARTH_SANITIZED 1
#endif
#endif

void limit_extractor(const IsolateLimits& lim) {
#ifndef HEARTH_SANITIZED
  rlimit as{lim.memory_bytes, lim.memory_bytes};
  setrlimit(RLIMIT_AS, &as);
#endif
  rlimit cpu{rlim_t(lim.cpu_seconds), rlim_t(lim.cpu_seconds + 5)};
  setrlimit(RLIMIT_CPU, &cpu);
  rlimit core{0, 0};  // a crash on a hostile file leaves no core dump of its bytes
  setrlimit(RLIMIT_CORE, &core);
}

Result<std::string> extract_in_child(const std::string& exe, DocKind kind, std::string_view bytes,
                                     std::string_view lang, const IsolateLimits& lim) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return internal_error(std::string("pipe: ") + strerror(errno));
  Fd in_r{in[0]}, in_w{in[1]};
  if (pipe2(out, O_CLOEXEC) != 0) return internal_error(std::string("pipe: ") + strerror(errno));
  Fd out_r{out[0]}, out_w{out[1]};
  if (pipe2(err, O_CLOEXEC) != 0) return internal_error(std::string("pipe: ") + strerror(errno));
  Fd err_r{err[0]}, err_w{err[1]};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  const std::string k = kind_name(kind, lang);
  std::vector<char*> argv = {const_cast<char*>(exe.c_str()), const_cast<char*>("extract-text"),
                             const_cast<char*>("--kind"), const_cast<char*>(k.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return internal_error("cannot start the text extractor " + exe + ": " + strerror(rc));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  // The child must never outlive this call, whatever happens below.
  struct Reap {
    pid_t pid;
    int status = 0;
    bool done = false;
    ~Reap() {
      if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
    }
  } reap{pid};

  std::string text, msg;
  size_t sent = 0;
  bool too_much = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(lim.timeout_seconds);
  char buf[65536];
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return internal_error("extracting the text took longer than " +
                            std::to_string(lim.timeout_seconds) + " s");
    pollfd p[3];
    int n = 0;
    int i_out = -1, i_err = -1, i_in = -1;
    if (out_r.fd >= 0) p[i_out = n++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) p[i_err = n++] = {err_r.fd, POLLIN, 0};
    if (in_w.fd >= 0) p[i_in = n++] = {in_w.fd, POLLOUT, 0};
    if (poll(p, nfds_t(n), int(std::min<int64_t>(left.count(), 1000))) < 0) {
      if (errno == EINTR) continue;
      return internal_error(std::string("poll: ") + strerror(errno));
    }
    if (i_in >= 0 && (p[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = write_no_sigpipe(in_w.fd, bytes.data() + sent,
                                         std::min<size_t>(bytes.size() - sent, 1 << 16));
      if (w > 0) sent += size_t(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == bytes.size()) in_w.reset();
    }
    auto drain = [&](Fd& f, std::string& into, size_t cap) {
      const ssize_t r = ::read(f.fd, buf, sizeof buf);
      if (r > 0) {
        if (into.size() + size_t(r) > cap) {
          if (&into == &text) too_much = true;
        } else {
          into.append(buf, size_t(r));
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        f.reset();
      }
    };
    if (i_out >= 0 && (p[i_out].revents & (POLLIN | POLLHUP | POLLERR)))
      drain(out_r, text, lim.max_output);
    if (i_err >= 0 && (p[i_err].revents & (POLLIN | POLLHUP | POLLERR))) drain(err_r, msg, 4096);
    if (too_much)
      return invalid_argument("the document's text is larger than " +
                              std::to_string(lim.max_output >> 20) + " MiB");
  }
  in_w.reset();
  if (waitpid(pid, &reap.status, 0) == pid) reap.done = true;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (reap.done && WIFEXITED(reap.status)) {
    if (WEXITSTATUS(reap.status) == 0) return text;
    if (msg.rfind("hearth: ", 0) == 0) msg = msg.substr(8);
    return invalid_argument(msg.empty() ? "the text extractor failed" : msg);
  }
  if (reap.done && WIFSIGNALED(reap.status))
    return internal_error("the text extractor stopped on this file (signal " +
                          std::to_string(WTERMSIG(reap.status)) + ")" +
                          (WTERMSIG(reap.status) == SIGXCPU ? ": CPU time limit" : ""));
  return internal_error("the text extractor did not finish");
}

}  // namespace hearth::rag
