// cli/key_command.cpp — `hearth key`: the public key that signs registry token requests (the one
// to add to an ollama.com account to push there), created when there is none.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "registry/key.h"

namespace hearth::cli {

void add_key_command(CLI::App& app) {
  auto* c = app.add_subcommand(
      "key",
      "show the public key that signs registry requests ($HEARTH_KEY, else ~/.ollama/id_ed25519 "
      "when it exists, else ~/.hearth/id_ed25519, created if missing)");
  auto path_only = std::make_shared<bool>(false);
  c->add_flag("--path", *path_only, "print the private key file's path instead");
  c->callback([path_only] {
    auto key = registry::load_or_create_key();
    if (!key) {
      std::fprintf(stderr, "Error: %s\n", key.status().message().c_str());
      std::exit(1);
    }
    if (key->generated) std::fprintf(stderr, "generated a new key pair in %s\n", key->path.c_str());
    if (*path_only)
      std::printf("%s\n", key->path.c_str());
    else
      std::printf("%s\n", key->key.authorized_key().c_str());
  });
}

}  // namespace hearth::cli
