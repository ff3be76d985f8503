// msgpack encoding of the wire schema (dynamo/transport/message.h).
#include "dynamo/msgpack_io.h"
#include "dynamo/transport/message.h"

namespace dynamo::wire {
namespace {

// Encodings are written straight into the std::string that is returned.
using Packer = mp::StringPacker;
using mp::PackStr;
void PackBytes(Packer& pk, std::string_view b) { mp::PackBin(pk, b); }

void PackHeader(Packer& pk, uint32_t items, MsgType type, uint64_t id) {
  pk.pack_array(items);
  pk.pack_uint32(kProtocolVersion);
  pk.pack_uint8(static_cast<uint8_t>(type));
  pk.pack_uint64(id);
}

// Typed readers of one array item; each fails with a message naming the field.
class Fields {
 public:
  Fields(const msgpack::object& array) : a_(array.via.array) {}
  size_t size() const { return a_.size; }

  Status Uint(size_t i, const char* name, uint64_t* out) const {
    const msgpack::object& o = a_.ptr[i];
    if (o.type != msgpack::type::POSITIVE_INTEGER) return Bad(name, "an unsigned integer");
    *out = o.via.u64;
    return Status::OK();
  }
  Status Bool(size_t i, const char* name, bool* out) const {
    const msgpack::object& o = a_.ptr[i];
    if (o.type != msgpack::type::BOOLEAN) return Bad(name, "a boolean");
    *out = o.via.boolean;
    return Status::OK();
  }
  // Accepts bin and str alike: clients in other languages pick either. Into
  // a string_view: a view of the frame (it was unpacked by reference).
  template <typename Out>
  Status Bytes(size_t i, const char* name, Out* out) const {
    return BytesOf(a_.ptr[i], name, out);
  }
  template <typename Out>
  static Status BytesOf(const msgpack::object& o, const char* name, Out* out) {
    return mp::ReadStr(o, out) ? Status::OK() : Bad(name, "bytes (bin or str)");
  }
  const msgpack::object& at(size_t i) const { return a_.ptr[i]; }

 private:
  static Status Bad(const char* name, const char* want) {
    return Status::InvalidArgument(std::string("malformed message: field '") + name + "' is not " +
                                   want);
  }
  const msgpack::object_array& a_;
};

// Parses the frame and checks the common header. On success *handle owns the
// object and *type/*id are set.
Status ParseHeader(std::string_view frame, msgpack::object_handle* handle, uint8_t* type,
                   uint64_t* id) {
  *id = 0;
  if (frame.empty()) return Status::InvalidArgument("malformed message: empty frame");
  std::string why;
  if (!mp::Unpack(frame, handle, 16, &why)) {
    return Status::InvalidArgument("malformed message: " + why);
  }
  const msgpack::object& o = handle->get();
  if (o.type != msgpack::type::ARRAY) {
    return Status::InvalidArgument("malformed message: not a msgpack array");
  }
  if (o.via.array.size < 3) {
    return Status::InvalidArgument("malformed message: fewer than 3 items");
  }
  Fields f(o);
  uint64_t version = 0, t = 0;
  if (Status s = f.Uint(0, "protocol_version", &version); !s.ok()) return s;
  if (Status s = f.Uint(1, "type", &t); !s.ok()) return s;
  // The id is read before the version is judged, so even a refusal of a
  // newer protocol reaches the right caller.
  if (Status s = f.Uint(2, "request_id", id); !s.ok()) return s;
  if (version != kProtocolVersion) {
    return Status::Unsupported("protocol version " + std::to_string(version) +
                               " not supported (this node speaks version " +
                               std::to_string(kProtocolVersion) + ")");
  }
  if (t > 255) return Status::Unsupported("unknown message type " + std::to_string(t));
  *type = static_cast<uint8_t>(t);
  return Status::OK();
}

template <typename Frames>
void PackFrames(Packer& pk, const Frames& frames) {
  pk.pack_array(static_cast<uint32_t>(frames.size()));
  for (const auto& f : frames) PackBytes(pk, f);
}

Status ReadFrames(const msgpack::object& o, std::vector<std::string_view>* out) {
  if (o.type != msgpack::type::ARRAY) {
    return Status::InvalidArgument("malformed message: field 'frames' is not an array");
  }
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    if (Status s = Fields::BytesOf(o.via.array.ptr[i], "frames", &(*out)[i]); !s.ok()) return s;
  }
  return Status::OK();
}

// An array of two-item arrays (TRANSFER's [key, siblings], ADMIN_MIGRATE's
// [key, value]); names are the field, the pair and its two items as the
// refusals say them.
Status ReadPairs(const msgpack::object& o, const char* field, const char* pair, const char* first,
                 const char* second,
                 std::vector<std::pair<std::string_view, std::string_view>>* out) {
  if (o.type != msgpack::type::ARRAY) {
    return Status::InvalidArgument(std::string("malformed message: field '") + field +
                                   "' is not an array");
  }
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 2) {
      return Status::InvalidArgument(std::string("malformed message: ") + pair + " is not [" +
                                     first + ", " + second + "]");
    }
    if (Status s = Fields::BytesOf(e.via.array.ptr[0], first, &(*out)[i].first); !s.ok()) return s;
    if (Status s = Fields::BytesOf(e.via.array.ptr[1], second, &(*out)[i].second); !s.ok()) {
      return s;
    }
  }
  return Status::OK();
}

Status WantItems(const Fields& f, size_t n, const char* what) {
  if (f.size() != n) {
    return Status::InvalidArgument(std::string("malformed message: ") + what + " has " +
                                   std::to_string(f.size()) + " items, expected " +
                                   std::to_string(n));
  }
  return Status::OK();
}

Status Uint32(const Fields& f, size_t i, const char* name, uint32_t* out) {
  uint64_t v = 0;
  if (Status s = f.Uint(i, name, &v); !s.ok()) return s;
  if (v > UINT32_MAX) return Status::InvalidArgument(std::string("field '") + name + "' too large");
  *out = static_cast<uint32_t>(v);
  return Status::OK();
}

// PUT and DEL after w: nothing, flags, or flags and a forwarded write's dot
// (node, counter, timestamp_ms), which only a forwarded write may carry.
Status DecodeWriteTail(const Fields& f, size_t at, RequestView* out) {
  if (f.size() == at) return Status::OK();
  if (Status s = Uint32(f, at, "flags", &out->flags); !s.ok()) return s;
  if (f.size() == at + 1) return Status::OK();
  if (Status s = f.Bytes(at + 1, "dot_node", &out->dot_node); !s.ok()) return s;
  if (Status s = f.Uint(at + 2, "dot_counter", &out->dot_counter); !s.ok()) return s;
  if (Status s = f.Uint(at + 3, "dot_timestamp_ms", &out->dot_timestamp_ms); !s.ok()) return s;
  if (out->dot_node.empty() || out->dot_counter == 0) {
    return Status::InvalidArgument("malformed message: a dot needs a node and a counter above 0");
  }
  if (!(out->flags & kFlagForwarded)) {
    return Status::InvalidArgument("malformed message: only a forwarded write carries a dot");
  }
  return Status::OK();
}

size_t SizeHint(const RequestView& req) {
  size_t hint = 64 + req.key.size() + req.value.size() + req.context.size() + req.payload.size();
  for (const auto& [k, v] : req.batch) hint += k.size() + v.size() + 12;
  for (const auto& fr : req.frames) hint += fr.size() + 5;
  return hint;
}

size_t SizeHint(const Reply& rep) {
  size_t hint = 64 + rep.context.size() + rep.status_msgpack.size() + rep.payload.size();
  for (const auto& v : rep.values) hint += v.size() + 5;
  for (const auto& fr : rep.frames) hint += fr.size() + 5;
  return hint;
}

void Pack(mp::StringSink& buf, const RequestView& req) {
  Packer pk(buf);
  switch (req.type) {
    case MsgType::kGet:
      PackHeader(pk, 6, req.type, req.id);
      PackBytes(pk, req.key);
      pk.pack_uint32(req.flags);
      pk.pack_uint32(req.quorum);
      break;
    case MsgType::kPut:
    case MsgType::kDel: {
      // Optional tails: flags, then (forwarded writes) the fixed dot.
      const bool dot = !req.dot_node.empty();
      const uint32_t tail = dot ? 4 : req.flags ? 1 : 0;
      const bool put = req.type == MsgType::kPut;
      PackHeader(pk, (put ? 7 : 6) + tail, req.type, req.id);
      PackBytes(pk, req.key);
      if (put) PackBytes(pk, req.value);
      PackBytes(pk, req.context);
      pk.pack_uint32(req.quorum);
      if (tail) pk.pack_uint32(req.flags);
      if (dot) {
        PackStr(pk, req.dot_node);
        pk.pack_uint64(req.dot_counter);
        pk.pack_uint64(req.dot_timestamp_ms);
      }
      break;
    }
    case MsgType::kReplicaGet:
      PackHeader(pk, req.node_id.empty() ? 4 : 5, req.type, req.id);
      PackBytes(pk, req.key);
      if (!req.node_id.empty()) PackStr(pk, req.node_id);
      break;
    case MsgType::kReplicaPut: {
      const uint32_t n = !req.node_id.empty() ? 7 : req.ring_version ? 6 : 5;
      PackHeader(pk, n, req.type, req.id);
      PackBytes(pk, req.key);
      PackBytes(pk, req.payload);
      if (n >= 6) pk.pack_uint64(req.ring_version);
      if (n == 7) PackStr(pk, req.node_id);
      break;
    }
    case MsgType::kGossip:
    case MsgType::kTree:
      PackHeader(pk, 4, req.type, req.id);
      PackBytes(pk, req.payload);
      break;
    case MsgType::kAdminJoin:
      PackHeader(pk, 4, req.type, req.id);
      PackStr(pk, req.endpoint);
      break;
    case MsgType::kAdminRemove:
      PackHeader(pk, 4, req.type, req.id);
      PackStr(pk, req.node_id);
      break;
    case MsgType::kAdminMigrate:
      PackHeader(pk, 5, req.type, req.id);
      PackStr(pk, req.endpoint);
      pk.pack_array(static_cast<uint32_t>(req.batch.size()));
      for (const auto& [k, v] : req.batch) {
        pk.pack_array(2);
        PackStr(pk, k);
        PackStr(pk, v);
      }
      break;
    case MsgType::kPull:
      PackHeader(pk, 5, req.type, req.id);
      pk.pack_uint32(req.partition);
      PackStr(pk, req.node_id);
      break;
    case MsgType::kJoin:
      PackHeader(pk, 5, req.type, req.id);
      PackStr(pk, req.node_id);
      PackStr(pk, req.endpoint);
      break;
    case MsgType::kBatch:
      PackHeader(pk, 4, req.type, req.id);
      PackFrames(pk, req.frames);
      break;
    case MsgType::kTransfer:
      PackHeader(pk, 4, req.type, req.id);
      pk.pack_array(static_cast<uint32_t>(req.batch.size()));
      for (const auto& [k, v] : req.batch) {
        pk.pack_array(2);
        PackBytes(pk, k);
        PackBytes(pk, v);
      }
      break;
    default:
      PackHeader(pk, 3, req.type, req.id);
      break;
  }
}

void Pack(mp::StringSink& buf, const Reply& rep) {
  Packer pk(buf);
  switch (rep.type) {
    case MsgType::kGetReply:
      PackHeader(pk, 6, rep.type, rep.id);
      if (rep.found)
        pk.pack_true();
      else
        pk.pack_false();
      pk.pack_array(static_cast<uint32_t>(rep.values.size()));
      for (const auto& v : rep.values) PackBytes(pk, v);
      PackBytes(pk, rep.context);
      break;
    case MsgType::kPutReply:
      PackHeader(pk, 4, rep.type, rep.id);
      PackBytes(pk, rep.context);
      break;
    case MsgType::kReplicaGetReply:
    case MsgType::kGossipReply:
    case MsgType::kTreeReply:
      PackHeader(pk, 4, rep.type, rep.id);
      PackBytes(pk, rep.payload);
      break;
    case MsgType::kAck:
      PackHeader(pk, 3, rep.type, rep.id);
      break;
    case MsgType::kBatchReply:
      PackHeader(pk, 4, rep.type, rep.id);
      PackFrames(pk, rep.frames);
      break;
    case MsgType::kStatusReply:
    case MsgType::kRingReply:
      PackHeader(pk, 4, rep.type, rep.id);
      if (rep.status_msgpack.empty()) {
        pk.pack_map(0);
      } else {
        buf.write(rep.status_msgpack.data(), rep.status_msgpack.size());
      }
      break;
    default:  // kError
      PackHeader(pk, 5, MsgType::kError, rep.id);
      pk.pack_uint8(rep.error_code);
      PackStr(pk, rep.error_message);
      break;
  }
}

// Encodes msg at the end of *out.
template <typename Msg>
void AppendEncoded(const Msg& msg, std::string* out) {
  mp::StringSink sink;
  sink.bytes = std::move(*out);
  sink.bytes.reserve(sink.bytes.size() + SizeHint(msg));
  Pack(sink, msg);
  *out = std::move(sink.bytes);
}

// A BATCH's header: [version, type, id, array of items], with the id and
// the item count at fixed widths (uint64, array32) so they can be written
// once the batch is complete.
constexpr size_t kBatchIdAt = 3;
constexpr size_t kBatchCountAt = kBatchIdAt + 9;
constexpr size_t kBatchHeader = kBatchCountAt + 5;
constexpr size_t kItemHeader = 5;  // bin32

void PutBigEndian(char* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

}  // namespace

std::string EncodeRequest(const RequestView& req) {
  std::string out;
  AppendEncoded(req, &out);
  return out;
}

std::string EncodeReply(const Reply& rep) {
  std::string out;
  AppendEncoded(rep, &out);
  return out;
}

BatchWriter::BatchWriter(MsgType type) : type_(type) {}

void BatchWriter::BeginItem() {
  if (buf_.empty()) {
    buf_.resize(kBatchHeader);
    buf_[0] = static_cast<char>(0x94);  // fixarray of 4
    buf_[1] = static_cast<char>(kProtocolVersion);
    buf_[2] = static_cast<char>(type_);
    buf_[kBatchIdAt] = static_cast<char>(0xcf);     // uint64
    buf_[kBatchCountAt] = static_cast<char>(0xdd);  // array32
  }
  item_start_ = buf_.size();
  buf_.resize(buf_.size() + kItemHeader);
  buf_[item_start_] = static_cast<char>(0xc6);  // bin32
}

void BatchWriter::EndItem() {
  PutBigEndian(&buf_[item_start_ + 1], buf_.size() - item_start_ - kItemHeader, 4);
  ++count_;
}

void BatchWriter::Add(const RequestView& req) {
  BeginItem();
  AppendEncoded(req, &buf_);
  EndItem();
}

void BatchWriter::Add(const Reply& rep) {
  BeginItem();
  AppendEncoded(rep, &buf_);
  EndItem();
}

std::string BatchWriter::Take(uint64_t id) {
  if (count_ == 1) {
    buf_.erase(0, kBatchHeader + kItemHeader);  // the item alone
  } else if (count_ > 1) {
    PutBigEndian(&buf_[kBatchIdAt + 1], id, 8);
    PutBigEndian(&buf_[kBatchCountAt + 1], count_, 4);
  }
  count_ = 0;
  std::string out = std::move(buf_);
  buf_.clear();
  return out;
}

Status DecodeRequest(std::string_view frame, RequestView* out) {
  msgpack::object_handle h;
  uint8_t type = 0;
  Status s = ParseHeader(frame, &h, &type, &out->id);
  if (!s.ok()) return s;
  Fields f(h.get());
  out->type = static_cast<MsgType>(type);
  switch (out->type) {
    case MsgType::kGet:
      if (s = WantItems(f, 6, "GET"); !s.ok()) return s;
      if (s = f.Bytes(3, "key", &out->key); !s.ok()) return s;
      if (s = Uint32(f, 4, "flags", &out->flags); !s.ok()) return s;
      return Uint32(f, 5, "r", &out->quorum);
    case MsgType::kPut:
      if (f.size() != 8 && f.size() != 11 && (s = WantItems(f, 7, "PUT"), !s.ok())) return s;
      if (s = f.Bytes(3, "key", &out->key); !s.ok()) return s;
      if (s = f.Bytes(4, "value", &out->value); !s.ok()) return s;
      if (s = f.Bytes(5, "context", &out->context); !s.ok()) return s;
      if (s = Uint32(f, 6, "w", &out->quorum); !s.ok()) return s;
      return DecodeWriteTail(f, 7, out);
    case MsgType::kDel:
      if (f.size() != 7 && f.size() != 10 && (s = WantItems(f, 6, "DEL"), !s.ok())) return s;
      if (s = f.Bytes(3, "key", &out->key); !s.ok()) return s;
      if (s = f.Bytes(4, "context", &out->context); !s.ok()) return s;
      if (s = Uint32(f, 5, "w", &out->quorum); !s.ok()) return s;
      return DecodeWriteTail(f, 6, out);
    case MsgType::kStatus:
      return WantItems(f, 3, "STATUS");
    case MsgType::kRing:
      return WantItems(f, 3, "RING");
    case MsgType::kPing:
      return WantItems(f, 3, "PING");
    case MsgType::kReplicaGet:
      if (f.size() != 5 && (s = WantItems(f, 4, "REPLICA_GET"), !s.ok())) return s;
      if (s = f.Bytes(3, "key", &out->key); !s.ok()) return s;
      return f.size() == 5 ? f.Bytes(4, "hint", &out->node_id) : Status::OK();
    case MsgType::kReplicaPut:
      if (f.size() != 6 && f.size() != 7 && (s = WantItems(f, 5, "REPLICA_PUT"), !s.ok())) {
        return s;
      }
      if (s = f.Bytes(3, "key", &out->key); !s.ok()) return s;
      if (s = f.Bytes(4, "siblings", &out->payload); !s.ok()) return s;
      if (f.size() >= 6 && (s = f.Uint(5, "ring_version", &out->ring_version), !s.ok())) {
        return s;
      }
      return f.size() == 7 ? f.Bytes(6, "hint", &out->node_id) : Status::OK();
    case MsgType::kGossip:
      if (s = WantItems(f, 4, "GOSSIP"); !s.ok()) return s;
      return f.Bytes(3, "state", &out->payload);
    case MsgType::kTree:
      if (s = WantItems(f, 4, "TREE"); !s.ok()) return s;
      return f.Bytes(3, "exchange", &out->payload);
    case MsgType::kAdminJoin:
      if (s = WantItems(f, 4, "ADMIN_JOIN"); !s.ok()) return s;
      return f.Bytes(3, "seed", &out->endpoint);
    case MsgType::kAdminLeave:
      return WantItems(f, 3, "ADMIN_LEAVE");
    case MsgType::kAdminRemove:
      if (s = WantItems(f, 4, "ADMIN_REMOVE"); !s.ok()) return s;
      return f.Bytes(3, "node_id", &out->node_id);
    case MsgType::kAdminMigrate: {
      if (s = WantItems(f, 5, "ADMIN_MIGRATE"); !s.ok()) return s;
      if (s = f.Bytes(3, "backend", &out->endpoint); !s.ok()) return s;
      return ReadPairs(f.at(4), "options", "option", "key", "value", &out->batch);
    }
    case MsgType::kPull:
      if (s = WantItems(f, 5, "PULL"); !s.ok()) return s;
      if (s = Uint32(f, 3, "partition", &out->partition); !s.ok()) return s;
      return f.Bytes(4, "node_id", &out->node_id);
    case MsgType::kJoin:
      if (s = WantItems(f, 5, "JOIN"); !s.ok()) return s;
      if (s = f.Bytes(3, "node_id", &out->node_id); !s.ok()) return s;
      return f.Bytes(4, "endpoint", &out->endpoint);
    case MsgType::kBatch:
      if (s = WantItems(f, 4, "BATCH"); !s.ok()) return s;
      return ReadFrames(f.at(3), &out->frames);
    case MsgType::kTransfer: {
      if (s = WantItems(f, 4, "TRANSFER"); !s.ok()) return s;
      return ReadPairs(f.at(3), "batch", "batch entry", "key", "siblings", &out->batch);
    }
    default:
      return Status::Unsupported("unknown message type " + std::to_string(type));
  }
}

Status DecodeReply(std::string_view frame, Reply* out) {
  msgpack::object_handle h;
  uint8_t type = 0;
  Status s = ParseHeader(frame, &h, &type, &out->id);
  if (!s.ok()) return s;
  Fields f(h.get());
  out->type = static_cast<MsgType>(type);
  switch (out->type) {
    case MsgType::kGetReply: {
      if (s = WantItems(f, 6, "GET_REPLY"); !s.ok()) return s;
      if (s = f.Bool(3, "found", &out->found); !s.ok()) return s;
      const msgpack::object& vs = f.at(4);
      if (vs.type != msgpack::type::ARRAY) {
        return Status::InvalidArgument("malformed message: field 'values' is not an array");
      }
      out->values.resize(vs.via.array.size);
      for (uint32_t i = 0; i < vs.via.array.size; ++i) {
        if (s = Fields::BytesOf(vs.via.array.ptr[i], "values", &out->values[i]); !s.ok()) {
          return s;
        }
      }
      return f.Bytes(5, "context", &out->context);
    }
    case MsgType::kPutReply:
      if (s = WantItems(f, 4, "PUT_REPLY"); !s.ok()) return s;
      return f.Bytes(3, "context", &out->context);
    case MsgType::kReplicaGetReply:
    case MsgType::kGossipReply:
    case MsgType::kTreeReply:
      if (s = WantItems(f, 4, "REPLY"); !s.ok()) return s;
      return f.Bytes(3, "payload", &out->payload);
    case MsgType::kAck:
      return WantItems(f, 3, "ACK");
    case MsgType::kBatchReply:
      if (s = WantItems(f, 4, "BATCH_REPLY"); !s.ok()) return s;
      return ReadFrames(f.at(3), &out->frames);
    case MsgType::kStatusReply:
    case MsgType::kRingReply: {
      if (s = WantItems(f, 4, "STATUS_REPLY"); !s.ok()) return s;
      msgpack::sbuffer buf;
      msgpack::pack(buf, f.at(3));
      out->status_msgpack.assign(buf.data(), buf.size());
      return Status::OK();
    }
    case MsgType::kError: {
      if (s = WantItems(f, 5, "ERROR"); !s.ok()) return s;
      uint64_t code = 0;
      if (s = f.Uint(3, "code", &code); !s.ok()) return s;
      out->error_code = static_cast<uint8_t>(code > 255 ? 8 : code);
      return f.Bytes(4, "message", &out->error_message);
    }
    default:
      return Status::Unsupported("unknown reply type " + std::to_string(type));
  }
}

}  // namespace dynamo::wire
