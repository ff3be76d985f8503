// Live engine migration (DESIGN.md 3.10): mirror, copy, check, record, switch.
#include "node/migration.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "dynamo/durable/file.h"
#include "dynamo/key_hash.h"
#include "dynamo/log.h"
#include "dynamo/ring.h"
#include "node/local_store.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::RequestView;

namespace {

constexpr char kRecordHeader[] = "dynamo-engine 1";

bool HasOption(const BackendOptions& o, const std::string& key) {
  for (const auto& [k, v] : o) {
    if (k == key) return true;
  }
  return false;
}

// For tests of a crash at each step (DYNAMO_TEST_MIGRATION_KILL_AT=mirror,
// copy, check or switch): the process kills itself there, as kill -9 would.
void MaybeKillAt(const char* step) {
  const char* at = std::getenv("DYNAMO_TEST_MIGRATION_KILL_AT");
  if (at != nullptr && std::string(at) == step) ::kill(::getpid(), SIGKILL);
}

}  // namespace

std::string EngineRecord::Encode() const {
  std::string out = std::string(kRecordHeader) + "\nbackend " + backend + "\nname " + name + "\n";
  for (const auto& [k, v] : options) out += "opt " + k + "=" + v + "\n";
  return out;
}

Result<EngineRecord> EngineRecord::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no engine record " + path);
  std::string line;
  if (!std::getline(in, line) || line != kRecordHeader) {
    return Status::Corruption(path + " is not an engine record (first line: '" + line + "')");
  }
  EngineRecord r;
  while (std::getline(in, line)) {
    if (line.rfind("backend ", 0) == 0) {
      r.backend = line.substr(8);
    } else if (line.rfind("name ", 0) == 0) {
      r.name = line.substr(5);
    } else if (line.rfind("opt ", 0) == 0) {
      const std::string kv = line.substr(4);
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) return Status::Corruption(path + ": bad option line " + kv);
      r.options.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (!line.empty()) {
      return Status::Corruption(path + ": unknown line '" + line + "'");
    }
  }
  if (r.backend.empty() || r.name.empty()) {
    return Status::Corruption(path + " names no engine");
  }
  return r;
}

Result<EngineRecord> RecordedEngine(const std::string& data_dir, const std::string& plugin_name) {
  const std::string path = EngineRecord::PathIn(data_dir);
  auto record = EngineRecord::Load(path);
  if (record.ok() && record->name != plugin_name) {
    return Status::InvalidArgument(path + " records that a migration moved this node to the '" +
                                   record->name + "' engine, not '" + plugin_name +
                                   "': start it with --backend " + record->backend);
  }
  return record;
}

const char* Migration::StateName(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kOpening:
      return "opening";
    case State::kCopying:
      return "copying";
    case State::kChecking:
      return "checking";
    case State::kSwitching:
      return "switching";
    case State::kDone:
      return "done";
    case State::kStopping:
      return "stopping";
    case State::kFailed:
      return "failed";
  }
  return "idle";
}

Migration::Migration(NodeContext& ctx, Hooks hooks) : ctx_(ctx), hooks_(std::move(hooks)) {}

Migration::Progress Migration::progress() const {
  Progress p;
  p.state = state_;
  p.to = record_.name;
  p.partitions_total = partitions_;
  p.partitions_copied = copied_;
  p.partitions_checked = checked_;
  p.keys_copied = keys_copied_;
  p.bytes_copied = bytes_copied_;
  p.keys_checked = keys_checked_;
  p.keys_mended = keys_mended_;
  if (state_ != State::kIdle) {
    const auto end = running() ? ctx_.loop.Now() : ended_;
    p.elapsed_s = std::chrono::duration<double>(end - started_).count();
  }
  p.error = error_;
  return p;
}

void Migration::ServeAdminMigrate(std::string identity, const RequestView& req) {
  auto refuse = [&](const Status& s) { ctx_.Reply(identity, Reply::Error(req.id, s)); };
  if (loading_) return refuse(Status::InvalidArgument("a migration is starting; see status"));
  if (running()) {
    return refuse(Status::InvalidArgument("a migration to the " + record_.name +
                                          " engine is running (" + StateName(state_) +
                                          "); see status"));
  }
  const std::string backend(req.endpoint);
  BackendOptions options;
  for (const auto& [k, v] : req.batch) {
    if (k.empty() || k.find_first_of("=\n") != std::string_view::npos ||
        v.find('\n') != std::string_view::npos) {
      return refuse(Status::InvalidArgument("bad engine option '" + std::string(k) + "'"));
    }
    options.emplace_back(std::string(k), std::string(v));
  }
  if (backend.find('\n') != std::string::npos) {
    return refuse(Status::InvalidArgument("bad backend name"));
  }
  // The plugin is loaded on a worker: a dlopen (of Connector/C++, for
  // mysql) is not for the loop. Until it answers nothing changes: a plugin
  // that does not load is refused with the migration as it was.
  loading_ = true;
  ctx_.loop.OnWorker<Result<std::shared_ptr<BackendPlugin>>>(
      [backend, dir = ctx_.options.plugin_dir] { return BackendPlugin::Load(backend, dir); },
      [this, identity = std::move(identity), id = req.id, backend,
       options = std::move(options)](Result<std::shared_ptr<BackendPlugin>> plugin) mutable {
        loading_ = false;
        if (!plugin.ok()) return ctx_.Reply(identity, Reply::Error(id, plugin.status()));
        Begin(std::move(identity), id, backend, std::move(options), std::move(plugin).value());
      });
}

void Migration::Begin(std::string identity, uint64_t id, const std::string& backend,
                      BackendOptions options, std::shared_ptr<BackendPlugin> plugin) {
  if (!HasOption(options, "data_dir")) options.emplace_back("data_dir", ctx_.options.data_dir);
  // A file engine gets a folder of its own: <data-dir>/file may be the
  // engine this node runs on, or one it left by an earlier migration.
  if (plugin->name() == "file" && !HasOption(options, "path")) {
    options.emplace_back("path",
                         ctx_.options.data_dir + "/file-" + std::to_string(ctx_.loop.WallMillis()));
  }
  plugin_ = std::move(plugin);
  record_ = EngineRecord{backend, plugin_->name(), options};
  state_ = State::kOpening;
  started_ = ctx_.loop.Now();
  keys_copied_ = bytes_copied_ = keys_checked_ = keys_mended_ = 0;
  copied_ = checked_ = next_ = 0;
  error_.clear();
  const Ring& ring = ctx_.cluster.ring();
  partitions_ = ring.empty() ? ctx_.options.partitions : ring.partitions();
  struct Opened {
    Status status;
    std::unique_ptr<Backend> engine;
  };
  ctx_.loop.OnWorker<std::shared_ptr<Opened>>(
      [plugin = plugin_, options] {
        auto out = std::make_shared<Opened>();
        auto engine = Backend::Open(plugin, options);
        if (!engine.ok()) {
          // An engine that cannot open is an I/O error whatever its plugin
          // said (mysql: "unavailable"): the node did answer.
          const Status& why = engine.status();
          out->status = why.code() == Status::Code::kInvalidArgument
                            ? why
                            : Status::IOError(why.message());
          return out;
        }
        bool any = false;
        Status s =
            (*engine)->Scan(0, UINT64_MAX, [&](std::string_view, uint64_t, std::string_view) {
              any = true;
              return false;
            });
        if (!s.ok()) {
          out->status = Status::IOError("cannot read the new engine: " + s.message());
        } else if (any) {
          out->status = Status::InvalidArgument(
              "the new " + plugin->name() +
              " engine already holds keys; migrate into an empty one (another path, table or "
              "database)");
        } else {
          out->engine = std::move(engine).value();
        }
        return out;
      },
      [this, identity = std::move(identity), id](std::shared_ptr<Opened> opened) {
        if (!opened->status.ok()) {
          state_ = State::kFailed;
          error_ = opened->status.message();
          ended_ = ctx_.loop.Now();
          log::Warn("migration to the " + record_.name + " engine refused: " + error_);
          return ctx_.Reply(identity, Reply::Error(id, opened->status));
        }
        // Calls go where both engines allow while writes reach both.
        const auto mode =
            std::min(hooks_.mode_of(ctx_.store.backend()), hooks_.mode_of(*opened->engine));
        ctx_.loop.SetEngineMode(mode);
        auto engine = std::make_shared<std::unique_ptr<Backend>>(std::move(opened->engine));
        ctx_.loop.OnWorker<bool>(
            [this, engine] {
              ctx_.store.StartMirror(std::move(*engine));
              return true;
            },
            [this, identity, id](bool) {
              MaybeKillAt("mirror");
              log::Info("migrating to the " + record_.name + " engine: copying " +
                        std::to_string(partitions_) + " partitions");
              state_ = State::kCopying;
              ctx_.Reply(identity, Reply::Ack(id));
              Step();
            });
      });
}

void Migration::Step() {
  if (!running()) return;
  if (ctx_.store.mirror_failures() > 0) {
    return Fail("a write to the new engine failed: " + ctx_.store.mirror_error());
  }
  if (state_ == State::kCopying && next_ >= partitions_) {
    log::Info("migration: " + std::to_string(keys_copied_) + " keys copied; checking the copy");
    state_ = State::kChecking;
    next_ = 0;
  }
  if (state_ == State::kChecking && next_ >= partitions_) return Switch();
  const HashRange range = PartitionHashRange(next_, partitions_);
  const bool copy = state_ == State::kCopying;
  struct Counts {
    Status status;
    uint64_t a = 0, b = 0;
  };
  const auto began = ctx_.loop.Now();
  ctx_.loop.OnWorker<Counts>(
      [this, range, copy] {
        Counts c;
        c.status = copy ? ctx_.store.CopyToMirror(range.lo, range.hi, &c.a, &c.b)
                        : ctx_.store.CheckMirror(range.lo, range.hi, &c.a, &c.b);
        return c;
      },
      [this, copy, began](Counts c) {
        if (!running()) return;
        if (!c.status.ok()) {
          return Fail(std::string(copy ? "copying" : "checking") + " partition " +
                      std::to_string(next_) + " failed: " + c.status.ToString());
        }
        if (copy) {
          keys_copied_ += c.a;
          bytes_copied_ += c.b;
          if (++copied_ == partitions_ / 2) MaybeKillAt("copy");
        } else {
          keys_checked_ += c.a;
          keys_mended_ += c.b;
          if (++checked_ == partitions_ / 2) MaybeKillAt("check");
        }
        ++next_;
        // Background work: no more than its share of the time.
        const auto pause = ctx_.background.PauseAfter(ctx_.loop.Now() - began);
        if (pause.count() == 0) return ctx_.loop.Post([this] { Step(); });
        ctx_.loop.After(pause, [this] { Step(); });
      });
}

void Migration::Switch() {
  state_ = State::kSwitching;
  if (keys_mended_ > 0) {
    log::Warn("migration: the check found " + std::to_string(keys_mended_) +
              " keys that differed and copied them again");
  }
  const std::string path = EngineRecord::PathIn(ctx_.options.data_dir);
  // One job, under every lock (LocalStore::SwitchToMirror): no write lands
  // between the new engine's sync, the record and the switch.
  ctx_.loop.OnWorker<Status>(
      [this, path, bytes = record_.Encode()] {
        return ctx_.store.SwitchToMirror([&path, &bytes] {
          // The options may hold a password: readable by the node's user
          // alone, from the moment the file exists.
          Status s = durable::WriteFileAtomically(path, bytes, 0600);
          if (!s.ok()) {
            // It may be in place (renamed, the folder not synced): a record
            // left behind would start the node on an engine no longer
            // written.
            ::unlink(path.c_str());
            return s;
          }
          // The record is written; the engine is not switched yet.
          MaybeKillAt("switch");
          return Status::OK();
        });
      },
      [this, path](Status s) {
        if (!s.ok()) return Fail("switching failed: " + s.ToString());
        hooks_.on_switched(plugin_, hooks_.mode_of(ctx_.store.backend()));
        state_ = State::kDone;
        ended_ = ctx_.loop.Now();
        log::Info("migrated to the " + record_.name + " engine: " + std::to_string(keys_copied_) +
                  " keys copied, " + std::to_string(keys_checked_) + " checked; recorded in " +
                  path + " (start this node with --backend " + record_.backend + " from now on)");
      });
}

void Migration::Fail(const std::string& why) {
  // Stopping until no write reaches the abandoned engine: a new migration
  // waits for that (running() holds).
  state_ = State::kStopping;
  error_ = why;
  log::Warn("migration to the " + record_.name + " engine failed: " + why +
            "; the node stays on its engine");
  ctx_.loop.OnWorker<bool>(
      [this] {
        ctx_.store.StopMirror();
        return true;
      },
      // Only once no write reaches the abandoned engine.
      [this](bool) {
        ctx_.loop.SetEngineMode(hooks_.mode_of(ctx_.store.backend()));
        state_ = State::kFailed;
        ended_ = ctx_.loop.Now();
      });
}

}  // namespace dynamo
