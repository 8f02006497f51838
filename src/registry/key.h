// registry/key.h — the ed25519 key pair that signs Ollama registry token requests (ollama.com
// knows a user by the public key registered with their account).
//
// Which key: $HEARTH_KEY when set (tests), else Ollama's ~/.ollama/id_ed25519 when it exists
// (someone switching from Ollama keeps the identity ollama.com knows), else hearth's own
// ~/.hearth/id_ed25519, generated on first use. Files are OpenSSH's "openssh-key-v1" private key
// format (unencrypted), with the authorized_keys line `ssh-ed25519 <base64>` in `<path>.pub`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hearth::registry {

struct SshKey {
  std::array<uint8_t, 32> seed{};  // the ed25519 private key (RFC 8032 seed)
  std::array<uint8_t, 32> pub{};
  std::string comment;

  // The SSH wire encoding of the public key: string "ssh-ed25519", string <32 bytes>.
  std::string public_blob() const;
  // `ssh-ed25519 <base64 of public_blob()>` (the first two fields of an authorized_keys line).
  std::string authorized_key() const;
  // The raw 64-byte ed25519 signature of `data`.
  Result<std::string> sign(std::string_view data) const;
  // What Ollama sends as the Authorization header of a token request:
  // `<base64 public_blob()>:<base64 signature of data>`.
  Result<std::string> authorization(std::string_view data) const;
};

// Standard base64 with padding, and its inverse (whitespace ignored; nullopt-like error on
// anything else that is not base64).
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);
// Unpadded base64url (RFC 4648 §5), as Go's base64.RawURLEncoding.
std::string base64url_raw(std::string_view bytes);

// Parses an OpenSSH private key file ("-----BEGIN OPENSSH PRIVATE KEY-----", PROTOCOL.key).
// Refuses an encrypted key, a key that is not ed25519 and a public half that does not match the
// private one.
Result<SshKey> parse_openssh_private_key(std::string_view text);
// The same format, as `ssh-keygen -t ed25519 -N ""` writes it.
std::string format_openssh_private_key(const SshKey& key);

// A new key pair from OpenSSL's random generator.
Result<SshKey> generate_key();

// $HOME, else the account's home directory.
std::string home_dir();
// Writes `bytes` to a new file `path` (0600, its directory created) unless one exists, atomically
// (a temporary file linked into place); false when `path` already existed.
Result<bool> create_exclusive(const std::string& path, std::string_view bytes);

// The key file to use (see the top of this file); never empty.
std::string key_path();

struct LoadedKey {
  SshKey key;
  std::string path;
  bool generated = false;  // it did not exist and was written now
};
// Reads the key at key_path(), or creates it there (0600, written atomically; `.pub` beside
// it) when it does not exist.
Result<LoadedKey> load_or_create_key();

}  // namespace hearth::registry
