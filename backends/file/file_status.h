// Status of a file-engine operation: a dynamo_backend_status code plus one
// line of text. The engine must not depend on the core's dynamo::Status (a
// backend links the plugin ABI only), so it carries its own small twin whose
// codes are the ABI's, ready to hand across the C boundary unchanged.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "dynamo/backend_plugin.h"

namespace dynamo::file {

class Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return Status(DYNAMO_BACKEND_NOT_FOUND, std::move(m)); }
  static Status Invalid(std::string m) { return Status(DYNAMO_BACKEND_INVALID, std::move(m)); }
  static Status IOError(std::string m) { return Status(DYNAMO_BACKEND_IO_ERROR, std::move(m)); }
  static Status Corruption(std::string m) {
    return Status(DYNAMO_BACKEND_CORRUPTION, std::move(m));
  }
  // An IOError "<what>: <strerror(err)>".
  static Status FromErrno(const std::string& what, int err) {
    return IOError(what + ": " + std::strerror(err));
  }

  bool ok() const { return code_ == DYNAMO_BACKEND_OK; }
  dynamo_backend_status code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(dynamo_backend_status c, std::string m) : code_(c), message_(std::move(m)) {}
  dynamo_backend_status code_ = DYNAMO_BACKEND_OK;
  std::string message_;
};

}  // namespace dynamo::file
