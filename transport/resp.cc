#include "dynamo/transport/resp.h"

#include <algorithm>
#include <charconv>

namespace dynamo::resp {
namespace {

// The line at buf[pos...] up to CRLF: false when no CRLF yet.
bool Line(std::string_view buf, size_t pos, std::string_view* line, size_t* next) {
  const size_t cr = buf.find("\r\n", pos);
  if (cr == std::string_view::npos) return false;
  *line = buf.substr(pos, cr - pos);
  *next = cr + 2;
  return true;
}

bool Number(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// Reads a bulk header "$<len>\r\n" at pos: 1 done, 0 need more, -1 error.
int BulkHeader(std::string_view buf, size_t pos, const Limits& limits, int64_t* len, size_t* next,
               std::string* why) {
  if (pos >= buf.size()) return 0;
  if (buf[pos] != '$') {
    *why = "Protocol error: expected '$', got '" +
           std::string(1, buf[pos] >= ' ' && buf[pos] < 127 ? buf[pos] : '?') + "'";
    return -1;
  }
  std::string_view line;
  if (!Line(buf, pos + 1, &line, next)) {
    if (buf.size() - pos > 32) {
      *why = "Protocol error: invalid bulk length";
      return -1;
    }
    return 0;
  }
  if (!Number(line, len) || *len < 0 || static_cast<uint64_t>(*len) > limits.max_declared_bulk) {
    *why = "Protocol error: invalid bulk length";
    return -1;
  }
  return 1;
}

Parse Inline(std::string_view buf, const Limits& limits, std::vector<std::string_view>* args,
             size_t* used, std::string* why) {
  const size_t nl = buf.find('\n');
  if ((nl == std::string_view::npos ? buf.size() : nl) > limits.max_inline) {
    *why = "Protocol error: too big inline request";
    return Parse::kError;
  }
  if (nl == std::string_view::npos) return Parse::kNeedMore;
  std::string_view line = buf.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  args->clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) args->push_back(line.substr(i, j - i));
    i = j;
  }
  *used = nl + 1;
  return Parse::kCommand;  // an empty line gives no args: the caller ignores it
}

}  // namespace

Parse ParseCommand(std::string_view buf, const Limits& limits, std::vector<std::string_view>* args,
                   size_t* used, Skip* skip, std::string* why) {
  if (buf.empty()) return Parse::kNeedMore;
  if (buf[0] != '*') return Inline(buf, limits, args, used, why);
  std::string_view line;
  size_t pos;
  if (!Line(buf, 1, &line, &pos)) {
    if (buf.size() > 32) {
      *why = "Protocol error: invalid multibulk length";
      return Parse::kError;
    }
    return Parse::kNeedMore;
  }
  int64_t n;
  if (!Number(line, &n) || static_cast<uint64_t>(n) > limits.max_args) {
    *why = "Protocol error: invalid multibulk length";
    return Parse::kError;
  }
  args->clear();
  if (n == 0) {  // nothing to run (a negative count failed the bound above)
    *used = pos;
    return Parse::kCommand;
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t len;
    size_t data;
    const int h = BulkHeader(buf, pos, limits, &len, &data, why);
    if (h < 0) return Parse::kError;
    if (h == 0) return Parse::kNeedMore;
    if (static_cast<uint64_t>(len) > limits.max_bulk) {
      *used = data;
      skip->bytes = static_cast<uint64_t>(len) + 2;
      skip->args = static_cast<size_t>(n - i - 1);
      skip->too_large = static_cast<size_t>(len);
      return Parse::kTooLarge;
    }
    if (buf.size() - data < static_cast<uint64_t>(len) + 2) return Parse::kNeedMore;
    if (buf[data + len] != '\r' || buf[data + len + 1] != '\n') {
      *why = "Protocol error: bulk string not followed by CRLF";
      return Parse::kError;
    }
    args->push_back(buf.substr(data, static_cast<size_t>(len)));
    pos = data + static_cast<size_t>(len) + 2;
  }
  *used = pos;
  return Parse::kCommand;
}

Parse Discard(std::string_view buf, const Limits& limits, Skip* skip, size_t* used, bool* done,
              std::string* why) {
  size_t pos = 0;
  *done = false;
  for (;;) {
    const uint64_t take = std::min<uint64_t>(skip->bytes, buf.size() - pos);
    pos += take;
    skip->bytes -= take;
    if (skip->bytes > 0) break;
    if (skip->args == 0) {
      *done = true;
      break;
    }
    int64_t len;
    size_t data;
    const int h = BulkHeader(buf, pos, limits, &len, &data, why);
    if (h < 0) return Parse::kError;
    if (h == 0) break;
    pos = data;
    skip->bytes = static_cast<uint64_t>(len) + 2;
    --skip->args;
  }
  *used = pos;
  return Parse::kCommand;
}

void AppendSimple(std::string* out, std::string_view s) {
  out->push_back('+');
  out->append(s);
  out->append("\r\n");
}

void AppendError(std::string* out, std::string_view s) {
  out->push_back('-');
  for (char c : s) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

void AppendInteger(std::string* out, int64_t v) {
  out->push_back(':');
  out->append(std::to_string(v));
  out->append("\r\n");
}

void AppendBulk(std::string* out, std::string_view s) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

void AppendNil(std::string* out) { out->append("$-1\r\n"); }

void AppendArray(std::string* out, size_t n) {
  out->push_back('*');
  out->append(std::to_string(n));
  out->append("\r\n");
}

}  // namespace dynamo::resp
