// Fuzz target: a request frame as it arrives from a client or a peer
// (wire::DecodeRequest), and each frame of a BATCH.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dynamo/transport/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  dynamo::wire::RequestView req;
  if (!dynamo::wire::DecodeRequest(frame, &req).ok()) return 0;
  for (std::string_view inner : req.frames) {
    dynamo::wire::RequestView part;
    (void)dynamo::wire::DecodeRequest(inner, &part);
  }
  // A decoded request encodes again, and that decodes to the same request.
  const std::string again = dynamo::wire::EncodeRequest(req);
  dynamo::wire::RequestView back;
  if (!dynamo::wire::DecodeRequest(again, &back).ok()) __builtin_trap();
  if (back.type != req.type || back.id != req.id || back.key != req.key ||
      back.value != req.value || back.context != req.context || back.flags != req.flags ||
      back.quorum != req.quorum) {
    __builtin_trap();
  }
  return 0;
}
