// Fuzz target: a client's context (PUT and DEL carry it, base64-decoded by
// the clients; the node decodes the bytes). One that decodes encodes and
// decodes to the same context and coordinator hint.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dynamo/versioning.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string hint;
  auto context = dynamo::DecodeContext(bytes, &hint);
  if (!context.ok()) return 0;
  std::string hint_again;
  auto again = dynamo::DecodeContext(dynamo::EncodeContext(*context, hint), &hint_again);
  if (!again.ok() || !(*again == *context) || hint_again != hint) __builtin_trap();
  return 0;
}
