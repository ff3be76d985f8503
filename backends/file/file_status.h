// The file engine reports errors as dynamo::Status (the base library's) and
// turns them into the plugin ABI's status codes only at the C boundary.
#pragma once

#include "dynamo/backend_plugin.h"
#include "dynamo/durable/file.h"
#include "dynamo/status.h"

namespace dynamo::file {

using dynamo::Status;

// The ABI code for s: the codes the engine produces map one to one; the
// others (which it never makes) become an I/O error or "unavailable".
inline dynamo_backend_status AbiCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return DYNAMO_BACKEND_OK;
    case Status::Code::kNotFound:
      return DYNAMO_BACKEND_NOT_FOUND;
    case Status::Code::kInvalidArgument:
      return DYNAMO_BACKEND_INVALID;
    case Status::Code::kCorruption:
      return DYNAMO_BACKEND_CORRUPTION;
    case Status::Code::kUnsupported:
      return DYNAMO_BACKEND_UNSUPPORTED;
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout:
      return DYNAMO_BACKEND_UNAVAILABLE;
    case Status::Code::kWouldBlock:
      return DYNAMO_BACKEND_WOULD_BLOCK;
    case Status::Code::kIOError:
    case Status::Code::kInternal:
    case Status::Code::kNotAuthorized:
      return DYNAMO_BACKEND_IO_ERROR;
  }
  return DYNAMO_BACKEND_IO_ERROR;
}

}  // namespace dynamo::file
