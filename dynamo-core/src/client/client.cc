#include "dynamo/client.h"

#include <nlohmann/json.hpp>

#include "dynamo/transport/channel.h"

namespace dynamo {

using wire::MsgType;

namespace {
Status Unexpected(const wire::Reply& r) {
  return Status::Corruption("unexpected reply type " + std::to_string(static_cast<int>(r.type)));
}
}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      channel_(std::make_unique<transport::Channel>(options_.endpoint)) {}

Client::~Client() = default;

Result<GetResult> Client::Get(std::string_view key, const GetOptions& options) {
  wire::Request req;
  req.type = MsgType::kGet;
  req.key = key;
  req.quorum = options.r;
  req.flags = options.local ? wire::kFlagLocal : 0;
  auto rep = channel_->Call(std::move(req), options_.timeout);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kGetReply) return Unexpected(*rep);
  GetResult out;
  out.found = rep->found;
  out.values = std::move(rep->values);
  out.context = std::move(rep->context);
  return out;
}

Result<std::string> Client::Write(wire::Request req) {
  auto rep = channel_->Call(std::move(req), options_.timeout);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kPutReply) return Unexpected(*rep);
  return std::move(rep->context);
}

Result<std::string> Client::Put(std::string_view key, std::string_view value,
                                std::string_view context, uint32_t w) {
  wire::Request req;
  req.type = MsgType::kPut;
  req.key = key;
  req.value = value;
  req.context = context;
  req.quorum = w;
  return Write(std::move(req));
}

Result<std::string> Client::Del(std::string_view key, std::string_view context, uint32_t w) {
  wire::Request req;
  req.type = MsgType::kDel;
  req.key = key;
  req.context = context;
  req.quorum = w;
  return Write(std::move(req));
}

Result<std::string> Client::MapJson(wire::Request req) {
  const MsgType want = req.type == MsgType::kRing ? MsgType::kRingReply : MsgType::kStatusReply;
  auto rep = channel_->Call(std::move(req), options_.timeout);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != want) return Unexpected(*rep);
  auto j = nlohmann::json::from_msgpack(rep->status_msgpack, true, false);
  if (j.is_discarded()) return Status::Corruption("reply is not a msgpack map");
  return j.dump();
}

Result<std::string> Client::StatusJson() {
  wire::Request req;
  req.type = MsgType::kStatus;
  return MapJson(std::move(req));
}

Result<std::string> Client::RingJson() {
  wire::Request req;
  req.type = MsgType::kRing;
  return MapJson(std::move(req));
}

Status Client::Admin(wire::Request req) {
  auto rep = channel_->Call(std::move(req), options_.timeout);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kAck) return Unexpected(*rep);
  return Status::OK();
}

Status Client::Join(std::string_view seed_endpoint) {
  wire::Request req;
  req.type = MsgType::kAdminJoin;
  req.endpoint = std::string(seed_endpoint);
  return Admin(std::move(req));
}

Status Client::Leave() {
  wire::Request req;
  req.type = MsgType::kAdminLeave;
  return Admin(std::move(req));
}

Status Client::Remove(std::string_view node_id) {
  wire::Request req;
  req.type = MsgType::kAdminRemove;
  req.node_id = std::string(node_id);
  return Admin(std::move(req));
}

}  // namespace dynamo
