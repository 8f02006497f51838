#include "store/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "base/json_depth.h"

namespace hearth::store {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}
void Sha256::update(const void* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* h = "0123456789abcdef";
  std::string r;
  for (unsigned i = 0; i < len; ++i) {
    r += h[md[i] >> 4];
    r += h[md[i] & 15];
  }
  return r;
}

Result<std::string> digest_hex(std::string_view d) {
  if (d.size() != 71 || (d.substr(0, 7) != "sha256:" && d.substr(0, 7) != "sha256-"))
    return invalid_argument("invalid digest '" + std::string(d) +
                            "' (expected sha256:<64 lowercase hex digits>)");
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return invalid_argument("invalid digest '" + std::string(d) + "'");
  return std::string(d.substr(7));
}

namespace {

Status sys_error(const std::string& what, const std::string& path) {
  return io_error(what, path, errno);
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// A temporary file beside `target` that is renamed into place on commit and removed otherwise.
class TempFile {
 public:
  static Result<TempFile> create(const fs::path& target) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return io_error("cannot create", target.parent_path().string(), ec.value());
    std::string tmpl = (target.parent_path() / ".tmp-XXXXXX").string();
    TempFile t;
    t.fd_ = ::mkstemp(tmpl.data());
    if (t.fd_ < 0) return sys_error("cannot create a temporary file in", target.parent_path());
    ::fchmod(t.fd_, 0600);  // the store is private to its owner
    t.path_ = tmpl;
    return t;
  }
  TempFile() = default;
  TempFile(TempFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Status write(const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return sys_error("cannot write", path_);
      }
      p += w;
      n -= size_t(w);
    }
    return Status::ok();
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  Status commit(const fs::path& target) {
    if (::fsync(fd_) != 0) return sys_error("cannot fsync", path_);
    ::close(fd_);
    fd_ = -1;
    if (::rename(path_.c_str(), target.c_str()) != 0) return sys_error("cannot rename to", target);
    path_.clear();
    fsync_dir(target.parent_path());
    return Status::ok();
  }

 private:
  int fd_ = -1;
  std::string path_;
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, "cannot read '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

Status io_error(const std::string& what, const std::string& path, int err) {
  const StatusCode c = err == ENOSPC || err == EDQUOT ? StatusCode::kNoSpace : StatusCode::kIo;
  return Status(c, what + " '" + path + "': " + std::strerror(err));
}

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  HEARTH_ASSIGN_OR_RETURN(TempFile t, TempFile::create(path));
  HEARTH_RETURN_IF_ERROR(t.write(bytes.data(), bytes.size()));
  return t.commit(path);
}

Result<Manifest> Manifest::parse(std::string_view text) {
  ojson j = parse_json_bounded<ojson>(text);
  if (j.is_discarded() || !j.is_object()) return corrupt("manifest is not JSON");
  auto layer = [](const ojson& l) -> Result<Layer> {
    if (!l.is_object() || !l.contains("digest") || !l["digest"].is_string() ||
        !l.contains("mediaType") || !l["mediaType"].is_string())
      return corrupt("manifest layer lacks digest or mediaType");
    Layer r;
    r.media_type = l["mediaType"].get<std::string>();
    r.digest = l["digest"].get<std::string>();
    HEARTH_RETURN_IF_ERROR(digest_hex(r.digest).status());
    if (l.contains("size") && l["size"].is_number_integer()) r.size = l["size"].get<int64_t>();
    if (l.contains("from") && l["from"].is_string()) r.from = l["from"].get<std::string>();
    if (l.contains("scale") && l["scale"].is_number()) r.scale = l["scale"].get<float>();
    return r;
  };
  Manifest m;
  if (!j.contains("config")) return corrupt("manifest has no config");
  HEARTH_ASSIGN_OR_RETURN(m.config, layer(j["config"]));
  if (!j.contains("layers") || !j["layers"].is_array()) return corrupt("manifest has no layers");
  for (const auto& l : j["layers"]) {
    HEARTH_ASSIGN_OR_RETURN(Layer x, layer(l));
    m.layers.push_back(std::move(x));
  }
  return m;
}

std::string Manifest::to_json() const {
  auto layer = [](const Layer& l) {
    ojson j = {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}};
    if (!l.from.empty()) j["from"] = l.from;
    if (l.scale != 1) j["scale"] = l.scale;
    return j;
  };
  ojson j = {{"schemaVersion", 2}, {"mediaType", kMediaManifest}, {"config", layer(config)}};
  j["layers"] = ojson::array();
  for (const auto& l : layers) j["layers"].push_back(layer(l));
  return j.dump();
}

const Layer* Manifest::find(std::string_view media_type) const {
  for (const auto& l : layers)
    if (l.media_type == media_type) return &l;
  return nullptr;
}

std::string Store::default_root() {
  if (const char* e = std::getenv("HEARTH_MODELS"); e && *e) return e;
  // Someone switching from Ollama keeps their models: its variable, then its store in place
  // (the layout is the same; nothing in it is rewritten).
  if (const char* e = std::getenv("OLLAMA_MODELS"); e && *e) return e;
  const char* home = std::getenv("HOME");
  const std::string h = home && *home ? home : ".";
  std::error_code ec;
  if (!fs::exists(h + "/.hearth/models", ec) &&
      fs::is_directory(h + "/.ollama/models/manifests", ec))
    return h + "/.ollama/models";
  return h + "/.hearth/models";
}

std::string Store::blob_path(std::string_view hex) const {
  return root_ + "/blobs/sha256-" + std::string(hex);
}

bool Store::has_blob(std::string_view digest) const {
  auto h = digest_hex(digest);
  return h.is_ok() && fs::exists(blob_path(*h));
}

Result<std::string> Store::add_blob(std::string_view bytes, std::string_view expected, Pin* pin) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  const std::string hex = h.hex();
  if (!expected.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::string want, digest_hex(expected));
    if (want != hex)
      return invalid_argument("digest mismatch: content is sha256:" + hex + ", expected " +
                              std::string(expected));
  }
  if (pin) pin->add("sha256:" + hex);
  const std::string path = blob_path(hex);
  if (!fs::exists(path)) HEARTH_RETURN_IF_ERROR(write_file_atomic(path, bytes));
  return "sha256:" + hex;
}

Result<std::string> Store::add_blob_from_file(const std::string& src, std::string_view expected,
                                              Pin* pin, std::string_view magic) {
  // O_NONBLOCK: a FIFO or device must not hang the caller; only regular files are copied.
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (in < 0)
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  "cannot open '" + src + "': " + std::strerror(errno));
  struct stat sb {};
  if (::fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(in);
    return invalid_argument("'" + src + "' is not a regular file");
  }
  // Copy into a temporary blob while hashing; rename it to its digest at the end.
  auto tmp = TempFile::create(fs::path(root_) / "blobs" / "x");
  if (!tmp) {
    ::close(in);
    return tmp.status();
  }
  Sha256 h;
  uint64_t h_bytes = 0;
  std::vector<char> buf(size_t(1) << 20);
  for (;;) {
    const ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ::close(in);
      return sys_error("cannot read", src);
    }
    if (r == 0) break;
    if (h_bytes < magic.size()) {
      const size_t n = std::min(magic.size() - h_bytes, size_t(r));
      if (std::memcmp(buf.data(), magic.data() + h_bytes, n) != 0) {
        ::close(in);
        return invalid_argument("'" + src + "' is not a " + std::string(magic) + " file");
      }
    }
    h_bytes += uint64_t(r);
    h.update(buf.data(), size_t(r));
    if (auto st = tmp->write(buf.data(), size_t(r)); !st) {
      ::close(in);
      return st;
    }
  }
  ::close(in);
  if (h_bytes < magic.size())
    return invalid_argument("'" + src + "' is not a " + std::string(magic) + " file");
  const std::string hex = h.hex();
  if (!expected.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::string want, digest_hex(expected));
    if (want != hex)
      return invalid_argument("digest mismatch: content is sha256:" + hex + ", expected " +
                              std::string(expected));
  }
  if (pin) pin->add("sha256:" + hex);
  const std::string path = blob_path(hex);
  if (!fs::exists(path)) HEARTH_RETURN_IF_ERROR(tmp->commit(path));
  return "sha256:" + hex;
}

Pin::~Pin() {
  std::lock_guard<std::mutex> lk(s_->pin_mu_);
  for (const auto& d : digests_) s_->pinned_.erase(s_->pinned_.find(d));
}

void Pin::add(const std::string& digest) {
  std::lock_guard<std::mutex> lk(s_->pin_mu_);
  s_->pinned_.insert(digest);
  digests_.push_back(digest);
}

BlobWriter::~BlobWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status BlobWriter::write(const void* data, size_t n) {
  if (!failed_.is_ok()) return failed_;
  if (limit_ && bytes_ + n > limit_) {
    failed_ = over_limit_ == StatusCode::kNoSpace
                  ? Status(StatusCode::kNoSpace, "not enough disk space for this blob")
                  : Status(StatusCode::kTooLarge, "blob is larger than the upload limit of " +
                                                      std::to_string(limit_) + " bytes");
    discard();  // nothing of it stays on the disk
    return failed_;
  }
  hash_->update(data, n);
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      failed_ = io_error("cannot write", tmp_path_, errno);
      discard();  // a full disk gets its space back at once
      return failed_;
    }
    p += w;
    n -= size_t(w);
    bytes_ += uint64_t(w);
  }
  return Status::ok();
}

Result<std::string> BlobWriter::commit(Pin* pin) {
  auto r = finish(pin);
  if (!r) discard();  // gone before the caller answers: a rejected upload leaves nothing
  return r;
}

void BlobWriter::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
}

Result<std::string> BlobWriter::finish(Pin* pin) {
  if (!failed_.is_ok()) return failed_;
  if (fd_ < 0) return Status(StatusCode::kInternal, "blob writer already finished");
  const std::string hex = hash_->hex();
  if (hex != expected_hex_)
    return invalid_argument("digest mismatch: content is sha256:" + hex +
                            ", expected sha256:" + expected_hex_);
  if (pin) pin->add("sha256:" + hex);
  const std::string path = store_->blob_path(hex);
  if (::fsync(fd_) != 0) return io_error("cannot fsync", tmp_path_, errno);
  ::close(fd_);
  fd_ = -1;
  if (!fs::exists(path)) {
    if (::rename(tmp_path_.c_str(), path.c_str()) != 0)
      return io_error("cannot rename to", path, errno);
    tmp_path_.clear();
    fsync_dir(fs::path(path).parent_path());
  }
  discard();  // (the content was there already: drop this copy)
  return "sha256:" + hex;
}

Result<std::unique_ptr<BlobWriter>> Store::begin_blob(std::string_view expected, uint64_t limit,
                                                      StatusCode over_limit) {
  HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(expected));
  const fs::path dir = fs::path(root_) / "blobs";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create", dir.string(), ec.value());
  std::string tmpl = (dir / ".tmp-upload-XXXXXX").string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return io_error("cannot create a temporary file in", dir.string(), errno);
  ::fchmod(fd, 0600);
  std::unique_ptr<BlobWriter> w(new BlobWriter());
  w->store_ = this;
  w->expected_hex_ = hex;
  w->tmp_path_ = tmpl;
  w->fd_ = fd;
  w->limit_ = limit;
  w->over_limit_ = over_limit;
  w->hash_ = std::make_unique<Sha256>();
  return w;
}

namespace {

// The entries of `dir` spelled like `part` ignoring case (directories, or manifest files for the
// tag): the exact spelling first, then the others in order.
std::vector<std::string> fold_matches(const fs::path& dir, const std::string& part, bool file) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || !equal_fold(name, part)) continue;
    std::error_code e2;
    if (file ? !it->is_regular_file(e2) : !it->is_directory(e2)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return (a == part) != (b == part) ? a == part : a < b;
  });
  return out;
}

// Fills parts[i..3] with a stored manifest's spelling below `dir`; false if there is none.
bool find_stored(const fs::path& dir, std::string* parts[4], int i) {
  for (const std::string& e : fold_matches(dir, *parts[i], i == 3)) {
    const std::string given = *parts[i];
    *parts[i] = e;
    if (i == 3 || find_stored(dir / e, parts, i + 1)) return true;
    *parts[i] = given;
  }
  return false;
}

}  // namespace

ModelName Store::canonical(const ModelName& n) const {
  const fs::path base = fs::path(root_) / "manifests";
  std::error_code ec;
  if (fs::is_regular_file(base / n.path(), ec)) return n;  // the usual case: spelled as stored
  ModelName out = n;
  std::string* parts[4] = {&out.host, &out.ns, &out.model, &out.tag};
  if (find_stored(base, parts, 0)) return out;  // a stored model with this name
  // A new model: it goes into the directories that exist already, however they are spelled.
  fs::path dir = base;
  for (int i = 0; i < 3; ++i) {
    auto m = fold_matches(dir, *parts[i], false);
    if (m.empty()) break;
    *parts[i] = m.front();
    dir /= m.front();
  }
  return out;
}

std::string Store::manifest_path(const ModelName& n) const {
  return root_ + "/manifests/" + canonical(n).path();
}

bool Store::exists(const ModelName& n) const {
  return fs::is_regular_file(manifest_path(n));
}

Result<Manifest> Store::read_manifest(const ModelName& n) const {
  auto bytes = read_file(manifest_path(n));
  if (!bytes) return Status(StatusCode::kNotFound, "model '" + n.display() + "' not found");
  auto m = Manifest::parse(*bytes);
  if (!m) return corrupt("model '" + n.display() + "': " + m.status().message());
  return m;
}

Status Store::write_manifest(const ModelName& n, const Manifest& m) {
  for (const Layer* l = &m.config; l; l = nullptr)
    if (!has_blob(l->digest)) return corrupt("config blob " + l->digest + " is missing");
  for (const auto& l : m.layers)
    if (!has_blob(l.digest)) return corrupt("layer blob " + l.digest + " is missing");
  return write_file_atomic(manifest_path(n), m.to_json());
}

Status Store::write_manifest_bytes(const ModelName& n, std::string_view bytes) {
  HEARTH_ASSIGN_OR_RETURN(Manifest m, Manifest::parse(bytes));
  if (!has_blob(m.config.digest)) return corrupt("config blob " + m.config.digest + " is missing");
  for (const auto& l : m.layers)
    if (!has_blob(l.digest)) return corrupt("layer blob " + l.digest + " is missing");
  return write_file_atomic(manifest_path(n), bytes);
}

Status Store::install_blob(const std::string& path, std::string_view hex, Pin* pin) {
  if (pin) pin->add("sha256:" + std::string(hex));
  const std::string target = blob_path(hex);
  std::error_code ec;
  fs::create_directories(fs::path(target).parent_path(), ec);
  if (ec) return io_error("cannot create", fs::path(target).parent_path().string(), ec.value());
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path, errno);
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!synced) return io_error("cannot fsync", path, err);
  ::chmod(path.c_str(), 0644);
  if (::rename(path.c_str(), target.c_str()) != 0)
    return io_error("cannot rename to", target, errno);
  fsync_dir(fs::path(target).parent_path());
  return Status::ok();
}

Result<std::vector<ModelEntry>> Store::list() const {
  std::vector<ModelEntry> out;
  const fs::path base = fs::path(root_) / "manifests";
  std::error_code ec;
  if (!fs::exists(base, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file() || it->path().filename().string().rfind(".tmp-", 0) == 0) continue;
    const auto rel = fs::relative(it->path(), base, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4) continue;
    auto name = ModelName::parse(parts[0] + "/" + parts[1] + "/" + parts[2] + ":" + parts[3]);
    if (!name) continue;
    auto bytes = read_file(it->path().string());
    if (!bytes) continue;
    auto m = Manifest::parse(*bytes);
    if (!m) continue;  // a corrupt manifest is skipped, not fatal for the listing
    ModelEntry e;
    e.name = *name;
    Sha256 h;
    h.update(bytes->data(), bytes->size());
    e.digest = h.hex();
    e.size = m->config.size;
    for (const auto& l : m->layers) e.size += l.size;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) == 0) e.modified_unix = st.st_mtime;
    out.push_back(std::move(e));
  }
  return out;
}

Status Store::copy(const ModelName& from, const ModelName& to) {
  auto bytes = read_file(manifest_path(from));
  if (!bytes) return Status(StatusCode::kNotFound, "model '" + from.display() + "' not found");
  return write_file_atomic(manifest_path(to), *bytes);
}

Status Store::remove(const ModelName& n) {
  HEARTH_ASSIGN_OR_RETURN(Manifest m, read_manifest(n));
  const fs::path p = manifest_path(n);
  if (::unlink(p.c_str()) != 0) return sys_error("cannot remove", p);
  fsync_dir(p.parent_path());
  // Prune empty manifest directories up to manifests/.
  std::error_code ec;
  const fs::path stop = fs::path(root_) / "manifests";
  for (fs::path d = p.parent_path(); d != stop && fs::is_empty(d, ec); d = d.parent_path())
    fs::remove(d, ec);
  std::vector<std::string> mine{m.config.digest};
  for (const auto& l : m.layers) mine.push_back(l.digest);
  return prune(mine);
}

Status Store::prune(const std::vector<std::string>& digests) {
  // Blobs still referenced by any manifest stay.
  std::set<std::string> in_use;
  HEARTH_ASSIGN_OR_RETURN(auto all, list());
  for (const auto& e : all) {
    auto om = read_manifest(e.name);
    if (!om) return om.status();  // be safe: never delete blobs while a manifest is unreadable
    in_use.insert(om->config.digest);
    for (const auto& l : om->layers) in_use.insert(l.digest);
  }
  {
    std::lock_guard<std::mutex> lk(pin_mu_);
    in_use.insert(pinned_.begin(), pinned_.end());
  }
  std::error_code ec;
  for (const auto& d : digests)
    if (!in_use.count(d))
      if (auto h = digest_hex(d); h.is_ok()) fs::remove(blob_path(*h), ec);
  return Status::ok();
}

bool Store::try_lock_exclusive() {
  if (lock_fd_ >= 0) return true;
  std::error_code ec;
  fs::create_directories(root_, ec);
  const int fd = ::open((root_ + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  lock_fd_ = fd;  // released by the kernel when the process ends, however it ends
  return true;
}

Result<Store::Collected> Store::collect_garbage(std::chrono::seconds temp_age,
                                                std::chrono::seconds blob_age, bool dry_run,
                                                bool keep_blobs) {
  Collected out;
  const auto now = fs::file_time_type::clock::now();
  auto older = [&](const fs::directory_entry& e, std::chrono::seconds age) {
    std::error_code ec;
    const auto t = e.last_write_time(ec);
    return !ec && now - t >= age;
  };
  auto old_enough = [&](const fs::directory_entry& e) { return older(e, temp_age); };
  auto drop = [&](const fs::directory_entry& e, int& counter) {
    std::error_code ec;
    const uint64_t size = e.is_regular_file(ec) ? e.file_size(ec) : 0;
    if (!dry_run && !fs::remove(e.path(), ec)) return;
    counter++;
    out.bytes += size;
  };
  std::error_code ec;
  // Temporaries: blobs/.tmp-*, blobs/.quantize-*, manifests/**/.tmp-*.
  const fs::path blobs = fs::path(root_) / "blobs";
  const fs::path manifests = fs::path(root_) / "manifests";
  auto is_temp = [](const fs::path& p) {
    const std::string n = p.filename().string();
    return n.rfind(".tmp-", 0) == 0 || n.rfind(".quantize-", 0) == 0;
  };
  // Referenced digests: every manifest must read, else no blob is collected (a manifest we
  // cannot read might reference anything).
  std::set<std::string> in_use;
  bool unreadable = false;
  if (fs::exists(manifests, ec))
    for (auto it = fs::recursive_directory_iterator(manifests, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      if (is_temp(it->path())) {
        if (old_enough(*it)) drop(*it, out.temporaries);
        continue;
      }
      auto bytes = read_file(it->path().string());
      auto m = bytes ? Manifest::parse(*bytes) : Result<Manifest>(bytes.status());
      if (!m) {
        unreadable = true;
        continue;
      }
      in_use.insert(m->config.digest);
      for (const auto& l : m->layers) in_use.insert(l.digest);
    }
  if (ec) unreadable = true;
  out.unreadable_manifest = unreadable;
  if (!fs::exists(blobs, ec)) return out;
  {
    std::lock_guard<std::mutex> lk(pin_mu_);
    in_use.insert(pinned_.begin(), pinned_.end());
  }
  for (const auto& e : fs::directory_iterator(blobs, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string n = e.path().filename().string();
    if (is_temp(e.path())) {
      if (old_enough(e)) drop(e, out.temporaries);
      continue;
    }
    if (keep_blobs || unreadable || n.rfind("sha256-", 0) != 0 || !digest_hex(n).is_ok()) continue;
    if (in_use.count("sha256:" + n.substr(7)) || !older(e, blob_age)) continue;
    drop(e, out.blobs);
  }
  return out;
}

}  // namespace hearth::store
