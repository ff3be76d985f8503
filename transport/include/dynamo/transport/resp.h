// RESP2, the Redis protocol (DESIGN.md 3.6): parsing requests and writing
// replies. Pure functions over byte buffers, no I/O, so every byte a client
// can send is exercised by unit tests (and fuzzing).
//
// A request is a multibulk array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
// or an inline line ("GET k\r\n"). Parsing never sizes a buffer from a
// declared count or length: arguments are views into the caller's buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dynamo::resp {

struct Limits {
  // A bulk argument longer than this is not buffered: its bytes are skipped
  // and the command answered with an error (the connection stays usable).
  size_t max_bulk = 1u << 20;
  // Declared bulk lengths and counts beyond these are protocol errors.
  size_t max_declared_bulk = 512u << 20;
  size_t max_args = 1u << 20;
  size_t max_inline = 64u << 10;  // an inline request line
};

enum class Parse {
  kCommand,   // *args holds a whole command; *used bytes were consumed
  kNeedMore,  // the buffer holds only part of a command; nothing consumed
  kTooLarge,  // an argument exceeds max_bulk: consume *used, then Skip
  kError,     // a protocol error (*why): answer it and close the connection
};

// What remains of a command whose argument was too large to keep.
struct Skip {
  uint64_t bytes = 0;    // of the current bulk (its data and CRLF) still to drop
  size_t args = 0;       // whole bulk arguments after it still to drop
  size_t too_large = 0;  // the size declared by the argument that was too large
};

// Parses one command at the start of buf.
Parse ParseCommand(std::string_view buf, const Limits& limits, std::vector<std::string_view>* args,
                   size_t* used, Skip* skip, std::string* why);

// Drops what *skip says from the start of buf. Returns the bytes consumed;
// *done when the command is wholly dropped; kError (with *why) when a later
// argument's header is malformed.
Parse Discard(std::string_view buf, const Limits& limits, Skip* skip, size_t* used, bool* done,
              std::string* why);

// Replies, appended to *out.
void AppendSimple(std::string* out, std::string_view s);  // +s
void AppendError(std::string* out, std::string_view s);   // -s (s holds no CR/LF)
void AppendInteger(std::string* out, int64_t v);
void AppendBulk(std::string* out, std::string_view s);
void AppendNil(std::string* out);
void AppendArray(std::string* out, size_t n);

}  // namespace dynamo::resp
