// Migration: moving a running node's data into another storage engine
// (DESIGN.md 3.10; docs/operations.md, "Migrating to another engine").
//
// dynamoctl migrate (ADMIN_MIGRATE) names the engine and its options. The
// node opens it (it must hold no key), and from then on every write that
// reaches the current engine reaches the new one too (LocalStore's mirror).
// It then copies the current engine into the new one, partition by
// partition (each key read and written under its lock, at the background
// share of the time), checks the copy partition by partition (each
// partition scanned on both sides, a key that differs compared again under
// its lock and copied again), syncs the new engine, records the switch in
// <data-dir>/engine (atomically, durably), and only then makes the new
// engine the node's. A crash before the record leaves the node on its old
// engine (the new one is abandoned); after it, on the new one. A node
// started with a --backend other than the recorded one refuses to start.
//
// Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/backend.h"
#include "dynamo/transport/message.h"
#include "node/node_context.h"

namespace dynamo {

// <data-dir>/engine: the engine a migration switched the node to.
struct EngineRecord {
  std::string backend;  // as given to migrate: a name or a path
  std::string name;     // the plugin's own name ("file")
  BackendOptions options;
  static std::string PathIn(const std::string& data_dir) { return data_dir + "/engine"; }
  std::string Encode() const;
  // NotFound when there is no record; Corruption when it is not one.
  static Result<EngineRecord> Load(const std::string& path);
};

// The engine record of data_dir, checked against the plugin a node starts
// with: NotFound when there is none, InvalidArgument (one line, naming the
// recorded engine) when it names another engine, Corruption when it is not
// a record.
Result<EngineRecord> RecordedEngine(const std::string& data_dir, const std::string& plugin_name);

class Migration {
 public:
  // kStopping: failed, the new engine being let go of.
  enum class State { kIdle, kOpening, kCopying, kChecking, kSwitching, kStopping, kDone, kFailed };
  static const char* StateName(State s);

  struct Hooks {
    // The new engine is the node's now (its plugin, for status; where its
    // calls may run).
    std::function<void(std::shared_ptr<BackendPlugin>, Loop::EngineCalls)> on_switched;
    // Where calls of this engine may run (Node's rule).
    std::function<Loop::EngineCalls(const Backend&)> mode_of;
  };

  Migration(NodeContext& ctx, Hooks hooks);

  void ServeAdminMigrate(std::string identity, const wire::RequestView& req);

  struct Progress {
    State state = State::kIdle;
    std::string to;  // the engine's name
    uint32_t partitions_total = 0;
    uint32_t partitions_copied = 0;
    uint32_t partitions_checked = 0;
    uint64_t keys_copied = 0, bytes_copied = 0;
    uint64_t keys_checked = 0, keys_mended = 0;
    double elapsed_s = 0;
    std::string error;  // kFailed: why
  };
  Progress progress() const;
  bool running() const {
    return state_ != State::kIdle && state_ != State::kDone && state_ != State::kFailed;
  }

 private:
  // After the plugin loaded: opens the new engine and starts mirroring.
  void Begin(std::string identity, uint64_t id, const std::string& backend, BackendOptions options,
             std::shared_ptr<BackendPlugin> plugin);
  void Step();
  void Fail(const std::string& why);
  void Switch();

  NodeContext& ctx_;
  Hooks hooks_;
  State state_ = State::kIdle;
  bool loading_ = false;  // a request's plugin is being loaded
  std::shared_ptr<BackendPlugin> plugin_;
  EngineRecord record_;
  uint32_t partitions_ = 0;
  uint32_t next_ = 0;  // the next partition to copy or check
  uint64_t keys_copied_ = 0, bytes_copied_ = 0, keys_checked_ = 0, keys_mended_ = 0;
  uint32_t copied_ = 0, checked_ = 0;
  std::string error_;
  Loop::Clock::time_point started_{}, ended_{};
};

}  // namespace dynamo
