// Fuzz target: a reply frame from a peer (wire::DecodeReply), and each frame
// of a BATCH_REPLY.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dynamo/transport/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  dynamo::wire::Reply rep;
  if (!dynamo::wire::DecodeReply(frame, &rep).ok()) return 0;
  for (std::string_view inner : rep.frames) {
    dynamo::wire::Reply part;
    (void)dynamo::wire::DecodeReply(inner, &part);
  }
  (void)rep.ToStatus();
  return 0;
}
