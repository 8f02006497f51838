// registry/push.h — `hearth push`: a model from the store to an Ollama-protocol registry.
//
// Per blob: HEAD (already there: done), POST an upload (a cross-mount from the layer's source
// model where the registry offers one), PATCH the bytes in parts with Content-Range, PUT with the
// digest; then the manifest, exactly the bytes the store holds.
#pragma once

#include <string_view>

#include "base/status.h"
#include "registry/pull.h"
#include "store/store.h"

namespace hearth::registry {

struct PushOptions {
  bool insecure = false;
};

// Pushes `name` ([http://][host[:port]/][ns/]model[:tag], as stored) to the registry its host
// names. Progress as Ollama streams it: "retrieving manifest", "pushing <12 hex>" with digest,
// total and completed per blob, "pushing manifest", "success".
Status push(store::Store& store, std::string_view name, const PushOptions& opts,
            const ProgressFn& progress);

}  // namespace hearth::registry
