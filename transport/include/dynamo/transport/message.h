// The wire schema: every message exchanged by clients, nodes and peers.
//
// One msgpack array per ZeroMQ frame:
//   [protocol_version, type, request_id, fields...]
// Replies echo the request id. docs/protocol.md describes each message; this
// header is the only definition, used by the node and the client alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dynamo/status.h"

namespace dynamo::wire {

inline constexpr uint32_t kProtocolVersion = 1;
// Hard cap on one frame. Larger frames are dropped by ZeroMQ before they are
// read (the sender is disconnected); clients refuse to send them.
inline constexpr size_t kMaxFrameBytes = 64u << 20;

enum class MsgType : uint8_t {
  // client requests
  kGet = 1,  // [v, 1, id, key:bin, flags:uint, r:uint]
  // PUT and DEL forwarded by a node may end with the new version's dot:
  // (, dot_node:str, dot_counter:uint, dot_timestamp_ms:uint) after flags.
  kPut = 2,     // [v, 2, id, key:bin, value:bin, context:bin, w:uint (, flags:uint)]
  kDel = 3,     // [v, 3, id, key:bin, context:bin, w:uint (, flags:uint)]
  kStatus = 4,  // [v, 4, id]
  kRing = 5,    // [v, 5, id]
  kPing = 6,    // [v, 6, id]  -> ACK (liveness probes between nodes)
  // between nodes
  kReplicaGet = 16,  // [v, 16, id, key:bin (, hint:str)]  (hint: asked as a stand-in)
  kReplicaPut = 17,  // [v, 17, id, key:bin, siblings:bin (, ring_version:uint (, hint:str))]
  kGossip = 20,      // [v, 20, id, cluster_state:bin]
  kJoin = 21,        // [v, 21, id, node_id:str, endpoint:str]
  kTransfer = 22,    // [v, 22, id, [[key:bin, siblings:bin], ...]]
  kTree = 23,        // [v, 23, id, exchange:bin]  (anti-entropy; docs/protocol.md)
  // Rebuild: stream the partition to node_id in TRANSFER batches; ACK once
  // every batch of it was acknowledged.
  kPull = 24,  // [v, 24, id, partition:uint, node_id:str]
  // administration (dynamoctl join / leave / remove)
  kAdminJoin = 25,    // [v, 25, id, seed_endpoint:str]
  kAdminLeave = 26,   // [v, 26, id]
  kAdminRemove = 27,  // [v, 27, id, node_id:str]
  // dynamoctl migrate: copy this node's data into a new engine, then switch
  // to it (DESIGN.md 3.10); ACK once it started. The options go in batch.
  kAdminMigrate = 28,  // [v, 28, id, backend:str, [[key:str, value:str], ...]]
  kBatch = 30,         // [v, 30, id, [request frame:bin, ...]]  (node to node)
  // replies
  kGetReply = 65,         // [v, 65, id, found:bool, values:[bin...], context:bin]
  kPutReply = 66,         // [v, 66, id, context:bin]          (put and del)
  kStatusReply = 68,      // [v, 68, id, status:map]
  kRingReply = 69,        // [v, 69, id, ring:map]
  kReplicaGetReply = 80,  // [v, 80, id, siblings:bin]  (empty: the replica has none)
  kAck = 81,              // [v, 81, id]                (replica put, join, transfer)
  kGossipReply = 84,      // [v, 84, id, cluster_state:bin]
  kTreeReply = 87,        // [v, 87, id, exchange:bin]
  kBatchReply = 94,       // [v, 94, id, [reply frame:bin, ...]]
  kError = 127,           // [v, 127, id, code:uint, message:str]
};

// Request flags.
inline constexpr uint32_t kFlagLocal = 0x1;      // GET: read --node's own engine only
inline constexpr uint32_t kFlagForwarded = 0x2;  // PUT/DEL: coordinate here, never forward
// PUT/DEL: the new version supersedes every version the coordinating replica
// holds when it applies the write (Redis SET and DEL: DESIGN.md 3.6).
inline constexpr uint32_t kFlagOverwrite = 0x4;

// A request. Its byte fields are Bytes: std::string in a Request, which a
// sender builds and which owns them; std::string_view in a RequestView,
// which DecodeRequest fills with views into the received frame (valid while
// the frame is: a handler copies what it keeps past its return) and which a
// sender may point at bytes it already holds. A Request converts to a
// RequestView for free; a handler that must keep a whole request past its
// return makes a Request of it.
template <typename Bytes>
struct BasicRequest {
  MsgType type = MsgType::kStatus;
  uint64_t id = 0;
  Bytes key;
  Bytes value;                // PUT
  Bytes context;              // PUT, DEL: encoded vector clock, empty = none
  uint32_t flags = 0;         // GET, PUT, DEL
  uint32_t quorum = 0;        // R for GET, W for PUT/DEL; 0 = the node's default
  Bytes payload;              // REPLICA_PUT: encoded siblings; GOSSIP: encoded state; TREE
  Bytes node_id;              // JOIN, ADMIN_REMOVE, PULL; REPLICA_PUT, REPLICA_GET: the hint
  Bytes endpoint;             // JOIN, ADMIN_JOIN (the seed); ADMIN_MIGRATE: the backend
  uint64_t ring_version = 0;  // REPLICA_PUT: the coordinator's ring; 0 = unknown
  uint32_t partition = 0;     // PULL
  // A forwarded PUT/DEL: the new version's dot, fixed by the node that
  // forwarded it (empty node: the coordinating replica picks its own).
  Bytes dot_node;
  uint64_t dot_counter = 0;
  uint64_t dot_timestamp_ms = 0;
  std::vector<std::pair<Bytes, Bytes>> batch;  // TRANSFER: (key, siblings); ADMIN_MIGRATE: options
  std::vector<Bytes> frames;                   // BATCH: encoded requests

  BasicRequest() = default;
  // Request -> RequestView is implicit (views of the owned bytes);
  // RequestView -> Request is explicit, since it copies every byte.
  template <typename Other, typename = std::enable_if_t<!std::is_same_v<Other, Bytes>>>
  explicit(!std::is_same_v<Bytes, std::string_view>)
      BasicRequest(const BasicRequest<Other>& o)  // NOLINT: implicit for views by design
      : type(o.type),
        id(o.id),
        key(o.key),
        value(o.value),
        context(o.context),
        flags(o.flags),
        quorum(o.quorum),
        payload(o.payload),
        node_id(o.node_id),
        endpoint(o.endpoint),
        ring_version(o.ring_version),
        partition(o.partition),
        dot_node(o.dot_node),
        dot_counter(o.dot_counter),
        dot_timestamp_ms(o.dot_timestamp_ms),
        batch(o.batch.begin(), o.batch.end()),
        frames(o.frames.begin(), o.frames.end()) {}
};
using Request = BasicRequest<std::string>;
using RequestView = BasicRequest<std::string_view>;

struct Reply {
  MsgType type = MsgType::kError;
  uint64_t id = 0;
  bool found = false;               // GET_REPLY
  std::vector<std::string> values;  // GET_REPLY: live sibling values
  std::string context;              // GET_REPLY, PUT_REPLY
  std::string status_msgpack;       // STATUS_REPLY, RING_REPLY: the map, as msgpack bytes
  std::string payload;              // REPLICA_GET_REPLY: siblings; GOSSIP_REPLY: state; TREE_REPLY
  // BATCH_REPLY: encoded replies; views into the decoded frame.
  std::vector<std::string_view> frames;
  uint8_t error_code = 0;     // ERROR: a Status::Code
  std::string error_message;  // ERROR

  static Reply Ack(uint64_t id) {
    Reply r;
    r.type = MsgType::kAck;
    r.id = id;
    return r;
  }
  static Reply Error(uint64_t id, const Status& s) {
    Reply r;
    r.type = MsgType::kError;
    r.id = id;
    r.error_code = static_cast<uint8_t>(s.code());
    r.error_message = s.message();
    return r;
  }
  // The reply as a Status: OK unless it is an ERROR.
  Status ToStatus() const {
    if (type != MsgType::kError) return Status::OK();
    return Status::FromCode(error_code, error_message);
  }
};

// Encoding never fails.
std::string EncodeRequest(const RequestView& req);
std::string EncodeReply(const Reply& rep);

// Decodes one frame. On failure returns InvalidArgument (malformed) or
// Unsupported (wrong protocol version, unknown type); out->id holds the
// request id whenever the frame got that far (else 0), so the caller can
// address an error reply. A RequestView's bytes (and a BATCH_REPLY's
// frames) are views into `frame`.
Status DecodeRequest(std::string_view frame, RequestView* out);
Status DecodeReply(std::string_view frame, Reply* out);

// Builds the frame of one loop turn's requests (replies) for one peer:
// each is encoded straight into the BATCH (BATCH_REPLY), so no frame is
// copied again; a turn of one is sent as that one frame.
class BatchWriter {
 public:
  explicit BatchWriter(MsgType type);  // kBatch or kBatchReply
  void Add(const RequestView& req);
  void Add(const Reply& rep);
  size_t size() const { return count_; }
  // The frame to send (the batch with the given id, or the one item's own
  // frame); the writer is empty again after.
  std::string Take(uint64_t id);

 private:
  void BeginItem();
  void EndItem();

  const MsgType type_;
  std::string buf_;  // the batch's header, then per item [bin32 length][frame]
  size_t item_start_ = 0;
  size_t count_ = 0;
};

}  // namespace dynamo::wire
