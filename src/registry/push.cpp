#include "registry/push.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "registry/client.h"

namespace hearth::registry {
namespace {

Status cancelled() {
  return Status(StatusCode::kCancelled, "push cancelled");
}

Status http_error(const std::string& what, const Reply& r) {
  const StatusCode code = r.status == 401 || r.status == 403 ? StatusCode::kPermissionDenied
                          : r.status == 404                  ? StatusCode::kNotFound
                          : r.status >= 500                  ? StatusCode::kUnavailable
                                                             : StatusCode::kInvalidArgument;
  return Status(code, what + ": " + std::to_string(r.status) + ": " + r.body.substr(0, 512));
}

std::string with_query(const std::string& url, const std::string& q) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + q;
}

// One blob: skipped if the registry has it, mounted if it can borrow it, else uploaded.
Status push_blob(Client& c, const store::Store& st, const store::Layer& l,
                 const ProgressFn& progress, int64_t part_bytes) {
  HEARTH_ASSIGN_OR_RETURN(std::string hex, store::digest_hex(l.digest));
  const std::string status = "pushing " + hex.substr(0, 12);
  const Endpoint& ep = c.endpoint();
  HEARTH_ASSIGN_OR_RETURN(Reply head, c.request("HEAD", ep.blob_url(l.digest)));
  if (head.status == 200)
    return progress({status, l.digest, l.size, l.size}) ? Status::ok() : cancelled();
  std::string url = ep.repo_url() + "/blobs/uploads/";
  if (!l.from.empty())
    if (auto from = store::ModelName::parse(l.from); from.is_ok() && from->host == ep.name.host)
      url = with_query(url, "mount=" + l.digest + "&from=" + from->ns + "/" + from->model);
  HEARTH_ASSIGN_OR_RETURN(Reply start, c.request("POST", url, {"Content-Length: 0"}));
  if (start.status == 201)
    return progress({status, l.digest, l.size, l.size}) ? Status::ok() : cancelled();
  if (start.status != 202) return http_error("starting the upload of " + l.digest, start);
  auto next = [&](const Reply& r, const std::string& base) -> Result<std::string> {
    for (const char* h : {"docker-upload-location", "location"})
      if (auto it = r.headers.find(h); it != r.headers.end() && !it->second.empty())
        return resolve_url(base, it->second);
    return Status(StatusCode::kUnavailable, "registry gave no upload location for " + l.digest);
  };
  HEARTH_ASSIGN_OR_RETURN(std::string loc, next(start, url));

  const std::string path = st.blob_path(hex);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return store::io_error("cannot open", path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat s {};
  ::fstat(fd, &s);
  const int64_t size = s.st_size;
  if (!progress({status, l.digest, size, 0})) return cancelled();
  bool stop = false;
  for (int64_t off = 0; off < size;) {
    const int64_t n = std::min(part_bytes, size - off);
    Result<Reply> r = Status(StatusCode::kUnavailable, "");
    for (int attempt = 0; attempt <= c.tuning().retries; ++attempt) {
      if (attempt > 0)
        std::this_thread::sleep_for(
            std::chrono::milliseconds(int64_t(c.tuning().backoff_ms) << std::min(attempt - 1, 5)));
      r = c.send_file("PATCH", loc,
                      {"Content-Type: application/octet-stream",
                       "Content-Range: " + std::to_string(off) + "-" + std::to_string(off + n - 1)},
                      fd, off, n, [&](int64_t sent) {
                        if (!progress({status, l.digest, size, off + sent})) stop = true;
                      });
      if (stop) return cancelled();
      if (r.is_ok() && r->status < 500) break;
    }
    if (!r) return r.status();
    if (r->status != 202 && r->status != 204 && r->status != 201)
      return http_error("uploading " + l.digest, *r);
    HEARTH_ASSIGN_OR_RETURN(loc, next(*r, loc));
    off += n;
  }
  HEARTH_ASSIGN_OR_RETURN(Reply done,
                          c.request("PUT", with_query(loc, "digest=" + l.digest), {}, ""));
  if (done.status != 201 && done.status != 204 && done.status != 200)
    return http_error("finishing the upload of " + l.digest, done);
  return progress({status, l.digest, size, size}) ? Status::ok() : cancelled();
}

}  // namespace

Status push(store::Store& st, std::string_view name, const PushOptions& opts,
            const ProgressFn& progress) {
  HEARTH_ASSIGN_OR_RETURN(Endpoint ep, Endpoint::parse(name, opts.insecure));
  if (!progress({"retrieving manifest", "", 0, 0})) return cancelled();
  std::ifstream in(st.manifest_path(ep.name), std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, "model \"" + ep.name.display() + "\" not found");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::Manifest::parse(bytes));
  Client c(ep);
  const int64_t part = 4 * c.tuning().part_bytes;  // 64 MiB by default
  for (const auto& l : m.layers) HEARTH_RETURN_IF_ERROR(push_blob(c, st, l, progress, part));
  HEARTH_RETURN_IF_ERROR(push_blob(c, st, m.config, progress, part));
  if (!progress({"pushing manifest", "", 0, 0})) return cancelled();
  HEARTH_ASSIGN_OR_RETURN(
      Reply r, c.request("PUT", ep.manifest_url(),
                         {std::string("Content-Type: ") + store::kMediaManifest}, bytes));
  if (r.status != 201 && r.status != 200) return http_error("pushing the manifest", r);
  progress({"success", "", 0, 0});
  return Status::ok();
}

}  // namespace hearth::registry
