// Status and Result<T>: the error model of every dynamo part.
//
// A Status is returned by value; OK costs nothing. Errors are built by named
// constructors and carry a code a caller can act on plus one line of text.
// The codes double as the wire protocol's error codes (docs/protocol.md), so
// their numeric values never change.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dynamo {

class Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kNotFound = 1,         // the key has no live version
    kInvalidArgument = 2,  // rejected input: too large, bad context, bad option
    kUnavailable = 3,      // quorum not reached; retrying later may succeed
    kTimeout = 4,          // no answer in time; retrying later may succeed
    kCorruption = 5,       // stored or received bytes fail their checks
    kIOError = 6,          // the operating system refused
    kUnsupported = 7,      // unknown message type, missing capability
    kInternal = 8,         // a bug or an engine failure without a better class
    kNotAuthorized = 9,    // the caller's key is refused, or lacks the role (DESIGN.md 3.7)
    // In-process only, never sent: an engine call made on the event loop
    // would have had to wait for a device; the caller retries it on a worker.
    kWouldBlock = 0x80,
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status Unavailable(std::string_view m) { return Status(Code::kUnavailable, m); }
  static Status Timeout(std::string_view m) { return Status(Code::kTimeout, m); }
  static Status Corruption(std::string_view m) { return Status(Code::kCorruption, m); }
  static Status IOError(std::string_view m) { return Status(Code::kIOError, m); }
  static Status Unsupported(std::string_view m) { return Status(Code::kUnsupported, m); }
  static Status Internal(std::string_view m) { return Status(Code::kInternal, m); }
  static Status NotAuthorized(std::string_view m) { return Status(Code::kNotAuthorized, m); }
  static Status WouldBlock(std::string_view m) { return Status(Code::kWouldBlock, m); }
  // An IOError "<what>: <strerror(err)>", for a failed system call.
  static Status FromErrno(std::string_view what, int err) {
    std::string m(what);
    m += ": ";
    m += std::strerror(err);
    return IOError(m);
  }
  // Builds a status from a wire code; unknown codes become kInternal.
  static Status FromCode(uint8_t code, std::string_view m) {
    if (code == 0) return OK();
    if (code > static_cast<uint8_t>(Code::kNotAuthorized)) return Internal(m);
    return Status(static_cast<Code>(code), m);
  }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsWouldBlock() const { return code_ == Code::kWouldBlock; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "<code name>: <message>".
  std::string ToString() const {
    if (ok()) return "OK";
    return std::string(CodeName(code_)) + ": " + message_;
  }
  static const char* CodeName(Code c) {
    switch (c) {
      case Code::kOk:
        return "OK";
      case Code::kNotFound:
        return "not found";
      case Code::kInvalidArgument:
        return "invalid argument";
      case Code::kUnavailable:
        return "unavailable";
      case Code::kTimeout:
        return "timeout";
      case Code::kCorruption:
        return "corruption";
      case Code::kIOError:
        return "I/O error";
      case Code::kUnsupported:
        return "unsupported";
      case Code::kInternal:
        return "internal error";
      case Code::kNotAuthorized:
        return "not authorized";
      case Code::kWouldBlock:
        return "would block";
    }
    return "unknown";
  }

 private:
  Status(Code c, std::string_view m) : code_(c), message_(m) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains its absence.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace dynamo
