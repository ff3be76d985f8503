#include "node/request_metrics.h"

#include <cmath>
#include <cstdio>

#include "dynamo/status.h"

namespace dynamo {

const char* MetricOpName(MetricOp op) {
  switch (op) {
    case MetricOp::kGet:
      return "get";
    case MetricOp::kPut:
      return "put";
    case MetricOp::kDel:
      return "del";
  }
  return "?";
}

const char* MetricRoleName(MetricRole role) {
  return role == MetricRole::kCoordinator ? "coordinator" : "replica";
}

const char* MetricResultName(MetricResult result) {
  switch (result) {
    case MetricResult::kOk:
      return "ok";
    case MetricResult::kNotFound:
      return "not_found";
    case MetricResult::kRejected:
      return "rejected";
    case MetricResult::kUnavailable:
      return "unavailable";
    case MetricResult::kError:
      return "error";
  }
  return "?";
}

std::array<RequestMetrics::Histogram, RequestMetrics::kOps * RequestMetrics::kRoles>
RequestMetrics::MakeHistograms() {
  const Histogram h(kBoundsMicros);
  return {h, h, h, h, h, h};
}

MetricResult RequestMetrics::ResultOf(const wire::Reply& reply) {
  if (reply.type == wire::MsgType::kGetReply) {
    return reply.found ? MetricResult::kOk : MetricResult::kNotFound;
  }
  if (reply.type != wire::MsgType::kError) return MetricResult::kOk;
  switch (static_cast<Status::Code>(reply.error_code)) {
    case Status::Code::kOk:
      return MetricResult::kOk;
    case Status::Code::kNotFound:
      return MetricResult::kNotFound;
    case Status::Code::kInvalidArgument:
    case Status::Code::kUnsupported:
    case Status::Code::kNotAuthorized:
      return MetricResult::kRejected;
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout:
      return MetricResult::kUnavailable;
    default:
      return MetricResult::kError;
  }
}

void RequestMetrics::Record(const RequestStart& start, const wire::Reply& reply,
                            std::chrono::steady_clock::duration elapsed) {
  const size_t i = Index(start.op, start.role);
  ++counts_[i][static_cast<size_t>(ResultOf(reply))];
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  latency_[i].Add(us > 0 ? static_cast<uint64_t>(us) : 0);
}

// ---- the text format

void PromWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PromWriter::Sample(std::string_view name, std::string_view labels, uint64_t value) {
  out_.append(name);
  if (!labels.empty()) out_.append("{").append(labels).append("}");
  out_.append(" ").append(std::to_string(value)).append("\n");
}

void PromWriter::Sample(std::string_view name, std::string_view labels, double value) {
  out_.append(name);
  if (!labels.empty()) out_.append("{").append(labels).append("}");
  out_.append(" ").append(FormatNumber(value)).append("\n");
}

void PromWriter::HistogramBucket(std::string_view name, std::string_view labels,
                                 const std::string& le, uint64_t cumulative) {
  std::string all(labels);
  if (!all.empty()) all += ",";
  all += Label("le", le);
  Sample(std::string(name) + "_bucket", all, cumulative);
}

std::string PromWriter::Label(std::string_view name, std::string_view value) {
  std::string s(name);
  s += "=\"";
  for (char c : value) {
    if (c == '\\') {
      s += "\\\\";
    } else if (c == '"') {
      s += "\\\"";
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  s += '"';
  return s;
}

std::string PromWriter::FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // 15 significant digits: exact for sums of microseconds up to 10^9 s,
  // and for integers up to 10^15.
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace dynamo
