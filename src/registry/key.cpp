#include "registry/key.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "store/store.h"

namespace hearth::registry {
namespace fs = std::filesystem;

// $HOME, else the account's home directory (a process started with an empty environment must
// not put its key in whatever directory it was started from).
std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_dir &&
      *found->pw_dir)
    return found->pw_dir;
  return "/tmp";
}

// Writes `bytes` to a new file `path` (0600) unless one exists: the temporary file is linked
// into place, so two processes creating the key at once end up with one of the two keys, whole.
// Returns false when `path` already existed.
Result<bool> create_exclusive(const std::string& path, std::string_view bytes) {
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty()) {
    fs::create_directories(dir, ec);
    if (ec) return store::io_error("cannot create directory", dir.string(), ec.value());
  }
  std::string tmpl = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return store::io_error("cannot create a temporary file for", path, errno);
  ::fchmod(fd, 0600);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      return store::io_error("cannot write", tmpl, err);
    }
    off += size_t(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_err = errno;
  ::close(fd);
  if (!synced) {
    ::unlink(tmpl.c_str());
    return store::io_error("cannot fsync", tmpl, sync_err);
  }
  const int linked = ::link(tmpl.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(tmpl.c_str());
  if (linked != 0) {
    if (link_err == EEXIST) return false;
    return store::io_error("cannot create", path, link_err);
  }
  if (!dir.empty())
    if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
      ::fsync(d);
      ::close(d);
    }
  return true;
}

namespace {

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
constexpr std::string_view kType = "ssh-ed25519";

// The SSH wire format's big-endian uint32 and length-prefixed strings (RFC 4251 §5).
void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out += char((v >> s) & 0xff);
}
void put_str(std::string& out, std::string_view s) {
  put_u32(out, uint32_t(s.size()));
  out += s;
}

struct Reader {
  std::string_view s;
  std::optional<uint32_t> u32() {
    if (s.size() < 4) return std::nullopt;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | uint8_t(s[i]);
    s.remove_prefix(4);
    return v;
  }
  std::optional<std::string_view> str() {
    auto n = u32();
    if (!n || *n > s.size()) return std::nullopt;
    std::string_view v = s.substr(0, *n);
    s.remove_prefix(*n);
    return v;
  }
};

Status bad_key(const std::string& why) {
  return corrupt("not a usable OpenSSH ed25519 private key: " + why);
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Result<Pkey> private_pkey(const std::array<uint8_t, 32>& seed) {
  Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!k) return internal_error("OpenSSL refused an ed25519 private key");
  return k;
}

Result<std::array<uint8_t, 32>> public_of(const std::array<uint8_t, 32>& seed) {
  HEARTH_ASSIGN_OR_RETURN(Pkey k, private_pkey(seed));
  std::array<uint8_t, 32> pub{};
  size_t n = pub.size();
  if (EVP_PKEY_get_raw_public_key(k.get(), pub.data(), &n) != 1 || n != pub.size())
    return internal_error("OpenSSL could not derive an ed25519 public key");
  return pub;
}

Result<std::string> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, "cannot read key file '" + path + "'");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > (64 << 10)) return bad_key("'" + path + "' is too large to be one");
  return s;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const size_t v = kB64.find(c);
    if (v == std::string_view::npos || pad > 0) return invalid_argument("invalid base64");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (pad > 2 || bits >= 6) return invalid_argument("invalid base64 length");
  return out;
}

std::string base64url_raw(std::string_view bytes) {
  std::string s = base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (auto& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

std::string SshKey::public_blob() const {
  std::string b;
  put_str(b, kType);
  put_str(b, std::string_view(reinterpret_cast<const char*>(pub.data()), pub.size()));
  return b;
}

std::string SshKey::authorized_key() const {
  return std::string(kType) + " " + base64_encode(public_blob());
}

Result<std::string> SshKey::sign(std::string_view data) const {
  HEARTH_ASSIGN_OR_RETURN(Pkey k, private_pkey(seed));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t n = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      n != 64)
    return internal_error("ed25519 signing failed");
  return sig;
}

Result<std::string> SshKey::authorization(std::string_view data) const {
  HEARTH_ASSIGN_OR_RETURN(std::string sig, sign(data));
  return base64_encode(public_blob()) + ":" + base64_encode(sig);
}

Result<SshKey> parse_openssh_private_key(std::string_view text) {
  const size_t b = text.find(kBegin);
  const size_t e = text.find(kEnd);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b) {
    if (text.find("-----BEGIN ") != std::string_view::npos)
      return unsupported(
          "the key is in another PEM format than OpenSSH's; convert it with "
          "ssh-keygen -p -f FILE (which rewrites it as an OpenSSH key)");
    return bad_key("no \"" + std::string(kBegin) + "\" block");
  }
  auto raw = base64_decode(text.substr(b + kBegin.size(), e - b - kBegin.size()));
  if (!raw) return bad_key("its body is not base64");
  std::string_view s = *raw;
  if (s.substr(0, kMagic.size()) != kMagic) return bad_key("no openssh-key-v1 header");
  Reader r{s.substr(kMagic.size())};
  const auto cipher = r.str(), kdf = r.str(), kdf_opts = r.str();
  const auto nkeys = r.u32();
  if (!cipher || !kdf || !kdf_opts || !nkeys) return bad_key("truncated header");
  if (*cipher != "none" || *kdf != "none")
    return Status(StatusCode::kUnsupported,
                  "the key is encrypted with a passphrase (cipher " + std::string(*cipher) +
                      "); hearth needs an unencrypted key — remove the passphrase with "
                      "ssh-keygen -p -N \"\" -f FILE, or use another key");
  if (*nkeys != 1) return bad_key("it holds " + std::to_string(*nkeys) + " keys, not 1");
  const auto pub_blob = r.str();
  const auto priv = r.str();
  if (!pub_blob || !priv) return bad_key("truncated");
  Reader pk{*pub_blob};
  const auto pub_type = pk.str();
  if (!pub_type) return bad_key("truncated public key");
  if (*pub_type != kType)
    return unsupported("the key is a " + std::string(*pub_type) +
                       " key; Ollama's registry signs with ed25519 keys only");
  Reader p{*priv};
  const auto check1 = p.u32(), check2 = p.u32();
  if (!check1 || !check2 || *check1 != *check2) return bad_key("check numbers differ");
  const auto type = p.str(), pub = p.str(), sk = p.str(), comment = p.str();
  if (!type || !pub || !sk || !comment) return bad_key("truncated private section");
  if (*type != kType) return bad_key("private section is not ed25519");
  if (pub->size() != 32 || sk->size() != 64) return bad_key("wrong ed25519 key lengths");
  if (sk->substr(32) != *pub) return bad_key("private and public halves differ");
  const auto outer_pub = pk.str();
  if (!outer_pub || *outer_pub != *pub || !pk.s.empty())
    return bad_key("the outer public key is not the private key's");
  // Padding: 1, 2, 3, ... up to the cipher's block size (8 for "none").
  for (size_t i = 0; i < p.s.size(); ++i)
    if (uint8_t(p.s[i]) != i + 1) return bad_key("bad padding");
  SshKey k;
  std::memcpy(k.seed.data(), sk->data(), 32);
  std::memcpy(k.pub.data(), pub->data(), 32);
  k.comment = std::string(*comment);
  HEARTH_ASSIGN_OR_RETURN(auto derived, public_of(k.seed));
  if (derived != k.pub) return bad_key("its public key is not the one of its private key");
  return k;
}

std::string format_openssh_private_key(const SshKey& key) {
  const std::string_view pub(reinterpret_cast<const char*>(key.pub.data()), key.pub.size());
  uint32_t check = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check);
  std::string priv;
  put_u32(priv, check);
  put_u32(priv, check);
  put_str(priv, kType);
  put_str(priv, pub);
  std::string sk(reinterpret_cast<const char*>(key.seed.data()), key.seed.size());
  sk += pub;
  put_str(priv, sk);
  put_str(priv, key.comment);
  for (uint8_t i = 1; priv.size() % 8 != 0; ++i) priv += char(i);
  std::string raw(kMagic);
  put_str(raw, "none");
  put_str(raw, "none");
  put_str(raw, "");
  put_u32(raw, 1);
  put_str(raw, key.public_blob());
  put_str(raw, priv);
  const std::string b64 = base64_encode(raw);
  std::string out(kBegin);
  out += '\n';
  for (size_t i = 0; i < b64.size(); i += 70) out += b64.substr(i, 70) + "\n";
  out += kEnd;
  out += '\n';
  return out;
}

Result<SshKey> generate_key() {
  SshKey k;
  if (RAND_bytes(k.seed.data(), int(k.seed.size())) != 1)
    return internal_error("no random bytes for a new key");
  HEARTH_ASSIGN_OR_RETURN(k.pub, public_of(k.seed));
  return k;
}

std::string key_path() {
  if (const char* e = std::getenv("HEARTH_KEY"); e && *e) return e;
  const std::string home = home_dir();
  std::error_code ec;
  if (fs::exists(home + "/.ollama/id_ed25519", ec)) return home + "/.ollama/id_ed25519";
  return home + "/.hearth/id_ed25519";
}

Result<LoadedKey> load_or_create_key() {
  LoadedKey out;
  out.path = key_path();
  std::error_code ec;
  if (!fs::exists(out.path, ec)) {
    HEARTH_ASSIGN_OR_RETURN(SshKey k, generate_key());
    HEARTH_ASSIGN_OR_RETURN(out.generated,
                            create_exclusive(out.path, format_openssh_private_key(k)));
  }
  auto text = read_all(out.path);
  if (!text) return text.status();
  auto k = parse_openssh_private_key(*text);
  if (!k) return Status(k.status().code(), out.path + ": " + k.status().message());
  out.key = std::move(*k);
  if (out.generated) {
    const std::string pub = out.path + ".pub";
    HEARTH_RETURN_IF_ERROR(store::write_file_atomic(pub, out.key.authorized_key() + "\n"));
    ::chmod(pub.c_str(), 0644);
  }
  return out;
}

}  // namespace hearth::registry
