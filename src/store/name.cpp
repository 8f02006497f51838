#include "store/name.h"

#include <cctype>

namespace hearth::store {

namespace {

bool first_ok(char c) {
  return std::isalnum(uint8_t(c)) || c == '_';
}

// Ollama's per-part rules: first char alphanumeric or '_', then the part's own set.
bool part_ok(std::string_view p, std::string_view extra, size_t max_len) {
  if (p.empty() || p.size() > max_len || !first_ok(p[0])) return false;
  for (char c : p.substr(1))
    if (!std::isalnum(uint8_t(c)) && c != '_' && extra.find(c) == std::string_view::npos)
      return false;
  return true;
}

Status invalid(std::string_view s, const std::string& why) {
  return invalid_argument("invalid model name '" + std::string(s) + "': " + why);
}

}  // namespace

Result<ModelName> ModelName::parse(std::string_view s) {
  std::string_view in = s;
  if (auto p = in.find("://"); p != std::string_view::npos) in = in.substr(p + 3);
  if (in.empty()) return invalid(s, "empty");
  ModelName n{kDefaultHost, kDefaultNamespace, "", kDefaultTag};
  // The tag follows the last ':' only if that comes after the last '/' (a host may carry a port).
  const size_t slash = in.rfind('/'), colon = in.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(in.substr(colon + 1));
    in = in.substr(0, colon);
    if (n.tag.empty()) return invalid(s, "empty tag after ':'");
  }
  // Peel parts from the right: model, then namespace, then host.
  std::string_view parts[3];
  int np = 0;
  while (true) {
    const size_t p = in.rfind('/');
    if (np == 2) {  // whatever is left is the host (which may not contain '/')
      parts[np++] = in;
      if (p != std::string_view::npos) return invalid(s, "too many '/'-separated parts");
      break;
    }
    if (p == std::string_view::npos) {
      parts[np++] = in;
      break;
    }
    parts[np++] = in.substr(p + 1);
    in = in.substr(0, p);
  }
  n.model = std::string(parts[0]);
  if (np >= 2) n.ns = std::string(parts[1]);
  if (np >= 3) n.host = std::string(parts[2]);
  if (!part_ok(n.model, "._-", 80)) return invalid(s, "bad model part '" + n.model + "'");
  if (!part_ok(n.tag, "._-", 80)) return invalid(s, "bad tag '" + n.tag + "'");
  if (!part_ok(n.ns, "-", 80)) return invalid(s, "bad namespace '" + n.ns + "'");
  if (!part_ok(n.host, ".:-", 350)) return invalid(s, "bad host '" + n.host + "'");
  return n;
}

std::string ModelName::display() const {
  std::string r;
  if (host != kDefaultHost)
    r = host + "/" + ns + "/";
  else if (ns != kDefaultNamespace)
    r = ns + "/";
  return r + model + ":" + tag;
}

bool equal_fold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool ModelName::equal_fold(const ModelName& o) const {
  return store::equal_fold(host, o.host) && store::equal_fold(ns, o.ns) &&
         store::equal_fold(model, o.model) && store::equal_fold(tag, o.tag);
}

std::string ModelName::path() const {
  return host + "/" + ns + "/" + model + "/" + tag;
}

}  // namespace hearth::store
