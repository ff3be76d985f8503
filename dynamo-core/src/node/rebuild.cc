// Rebuild of a replica that holds none of its data: each partition streamed
// whole from another replica (PULL, then TRANSFER batches), the partitions
// still to fetch kept in <data-dir>/rebuild so that a crash resumes there.
#include "node/rebuild.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "dynamo/backend.h"
#include "dynamo/durable/file.h"
#include "dynamo/log.h"
#include "node/local_store.h"
#include "node/transfer.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

namespace {

// A pull is answered when its whole partition arrived; a partition of a few
// hundred megabytes streams in well under this.
constexpr std::chrono::milliseconds kPullTimeout{120000};

constexpr char kMarkerHeader[] = "dynamo-rebuild 1";

}  // namespace

Rebuild::Rebuild(NodeContext& ctx, const Transfer& transfer) : ctx_(ctx), transfer_(transfer) {}

const char* Rebuild::StateName(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kChecking:
      return "checking";
    case State::kWaitingForRing:
      return "waiting_for_ring";
    case State::kRunning:
      return "running";
  }
  return "idle";
}

std::string Rebuild::MarkerPath() const { return ctx_.options.data_dir + "/rebuild"; }

// The marker: its header, then "partitions all" (the ring was not known
// yet) or "partitions" and the numbers of those still to fetch.
void Rebuild::Start() {
  if (ctx_.options.rebuild_streams == 0) return;  // refilled by anti-entropy
  std::ifstream in(MarkerPath());
  if (in) {
    std::string header, word, which;
    std::getline(in, header);
    in >> word >> which;
    if (header != kMarkerHeader || word != "partitions") {
      log::Warn(MarkerPath() + " is not a rebuild marker; rebuilding every partition");
    } else if (which != "all") {
      std::vector<uint32_t> parts;
      std::istringstream rest(which);
      uint32_t p = 0;
      if (rest >> p) parts.push_back(p);
      while (in >> p) parts.push_back(p);
      todo_.assign(parts.begin(), parts.end());
      total_ = static_cast<uint32_t>(todo_.size());
    }
    log::Info("resuming the rebuild of this replica: " +
              (todo_.empty() ? std::string("every partition")
                             : std::to_string(todo_.size()) + " partitions left"));
    state_ = todo_.empty() ? State::kWaitingForRing : State::kRunning;
    started_ = ctx_.loop.Now();
    keys_at_start_ = transfer_.keys_received();
    bytes_at_start_ = transfer_.bytes_received();
    return Tick();
  }
  // A node whose engine holds no key rebuilds (a new node also pulls what
  // no hand-off brings it; a pull of a partition being handed to it waits
  // for that hand-off).
  state_ = State::kChecking;
  ctx_.loop.OnEngineBulk<Result<bool>>(
      [this]() -> Result<bool> {
        bool any = false;
        Status s = ctx_.store.backend().Scan(0, UINT64_MAX,
                                             [&](std::string_view, uint64_t, std::string_view) {
                                               any = true;
                                               return false;
                                             });
        if (!s.ok()) return s;
        return any;
      },
      [this](Result<bool> any) {
        if (!any.ok()) {
          log::Warn("cannot tell whether the engine is empty: " + any.status().ToString());
          state_ = State::kIdle;
          return;
        }
        if (*any) {
          state_ = State::kIdle;
          return;
        }
        state_ = State::kWaitingForRing;
        started_ = ctx_.loop.Now();
        keys_at_start_ = transfer_.keys_received();
        bytes_at_start_ = transfer_.bytes_received();
        SaveMarker();
        Tick();
      });
}

// The ring is known and gives this node partitions: those with another
// replica to stream from are the rebuild's.
void Rebuild::Plan() {
  const Ring& ring = ctx_.cluster.ring();
  todo_.clear();
  for (uint32_t p = 0; p < ring.partitions(); ++p) {
    const auto pref = ring.PreferenceList(p);
    if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) != pref.end() &&
        pref.size() > 1) {
      todo_.push_back(p);
    }
  }
  total_ = static_cast<uint32_t>(todo_.size());
  done_ = 0;
  state_ = State::kRunning;
  if (total_ > 0) {
    log::Info("this replica holds no data: rebuilding " + std::to_string(total_) +
              " partitions by streaming them from other replicas");
  }
  SaveMarker();
}

void Rebuild::Tick() {
  if (state_ == State::kWaitingForRing) {
    const Ring& ring = ctx_.cluster.ring();
    if (ring.empty() || !ring.Contains(ctx_.options.node_id)) return;
    Plan();
  }
  if (state_ != State::kRunning) return;
  if (todo_.empty() && in_flight_.empty()) {
    const double seconds = std::chrono::duration<double>(ctx_.loop.Now() - started_).count();
    const Progress p = progress();
    if (total_ > 0) {
      log::Info("rebuilt " + std::to_string(total_) + " partitions: " + std::to_string(p.keys) +
                " keys, " + std::to_string(p.bytes) + " bytes in " + std::to_string(seconds) +
                " s");
    }
    last_ = p;  // what status shows once it is over
    last_.elapsed_s = seconds;
    last_.eta_s = 0;
    state_ = State::kIdle;
    ++completed_;
    SaveMarker();  // removes it
    return;
  }
  // Partitions whose pull failed went to the back; a pass over the queue
  // starts what it can.
  for (size_t n = todo_.size(); n > 0 && in_flight_.size() < ctx_.options.rebuild_streams; --n) {
    const uint32_t p = todo_.front();
    todo_.pop_front();
    Pull(p);
  }
}

void Rebuild::Pull(uint32_t partition) {
  const Ring& ring = ctx_.cluster.ring();
  std::vector<std::string> sources;
  if (partition < ring.partitions()) {
    for (const auto& n : ring.PreferenceList(partition)) {
      if (n == ctx_.options.node_id || ctx_.IsDownNode(n)) continue;
      const Member* m = ctx_.cluster.Find(n);
      if (m == nullptr || m->state != MemberState::kUp) continue;
      sources.push_back(n);
    }
  }
  if (partition >= ring.partitions() || !ring.Contains(ctx_.options.node_id)) {
    return Done(partition);  // the ring changed: no longer this node's to fetch
  }
  const auto pref = ring.PreferenceList(partition);
  if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end()) {
    return Done(partition);
  }
  if (sources.empty()) {
    todo_.push_back(partition);  // no replica to ask now; the next round tries again
    return;
  }
  // Spread over the replicas, and to the next one after a failure.
  const std::string source = sources[(partition + attempts_[partition]) % sources.size()];
  in_flight_[partition] = source;
  Request req;
  req.type = MsgType::kPull;
  req.partition = partition;
  req.node_id = ctx_.options.node_id;
  ctx_.loop.Call(
      ctx_.EndpointOf(source), req, kPullTimeout, [this, partition, source](Result<Reply> rep) {
        in_flight_.erase(partition);
        if (state_ != State::kRunning) return;
        if (rep.ok() && rep->type == MsgType::kAck) {
          Done(partition);
        } else {
          const std::string why = !rep.ok() ? rep.status().ToString() : rep->ToStatus().ToString();
          log::Warn("rebuild: pulling partition " + std::to_string(partition) + " from " + source +
                    " failed (" + why + "); will ask again");
          ++attempts_[partition];
          todo_.push_back(partition);
        }
        Tick();
      });
}

void Rebuild::Done(uint32_t partition) {
  attempts_.erase(partition);
  ++done_;
  SaveMarker();
}

bool Rebuild::Pending(uint32_t partition) const {
  // While the engine is checked, every partition may be about to be pulled.
  if (state_ == State::kWaitingForRing || state_ == State::kChecking) return true;
  if (state_ != State::kRunning) return false;
  return in_flight_.count(partition) > 0 ||
         std::find(todo_.begin(), todo_.end(), partition) != todo_.end();
}

// Written on a worker: the partitions not finished (in flight ones too),
// or nothing at all once the rebuild is over.
void Rebuild::SaveMarker() {
  std::string bytes;
  const bool remove = state_ == State::kIdle;
  if (!remove) {
    bytes = std::string(kMarkerHeader) + "\npartitions";
    if (state_ == State::kWaitingForRing) {
      bytes += " all";
    } else {
      std::vector<uint32_t> left(todo_.begin(), todo_.end());
      for (const auto& [p, source] : in_flight_) left.push_back(p);
      std::sort(left.begin(), left.end());
      for (uint32_t p : left) {
        bytes += ' ';
        bytes += std::to_string(p);
      }
    }
    bytes += "\n";
  }
  const uint64_t seq = ++marker_seq_;
  ctx_.loop.RunOnWorker([path = MarkerPath(), bytes = std::move(bytes), remove, seq,
                         mu = marker_mu_, saved = marker_saved_] {
    std::lock_guard<std::mutex> l(*mu);
    if (seq <= *saved) return;  // a newer state was written already
    if (remove) {
      if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
        log::Error("cannot remove " + path + ": " + std::strerror(errno));
        return;
      }
    } else if (Status s = durable::WriteFileAtomically(path, bytes); !s.ok()) {
      log::Error("cannot save the rebuild's progress: " + s.ToString());
      return;
    }
    *saved = seq;
  });
}

Rebuild::Progress Rebuild::progress() const {
  Progress p;
  p.state = state_;
  p.partitions_total = total_;
  p.partitions_done = done_;
  p.completed = completed_;
  for (const auto& [part, source] : in_flight_) p.in_flight.emplace_back(part, source);
  if (state_ == State::kIdle || state_ == State::kChecking) {
    if (completed_ == 0) return p;
    p.keys = last_.keys;  // the last rebuild's figures
    p.bytes = last_.bytes;
    p.elapsed_s = last_.elapsed_s;
    p.rate_bytes_per_s = p.elapsed_s > 0 ? static_cast<double>(p.bytes) / p.elapsed_s : 0;
    p.eta_s = 0;
    return p;
  }
  p.keys = transfer_.keys_received() - keys_at_start_;
  p.bytes = transfer_.bytes_received() - bytes_at_start_;
  p.elapsed_s = std::chrono::duration<double>(ctx_.loop.Now() - started_).count();
  if (p.elapsed_s > 0) p.rate_bytes_per_s = static_cast<double>(p.bytes) / p.elapsed_s;
  if (done_ > 0 && total_ >= done_) {
    p.eta_s = p.elapsed_s / done_ * (total_ - done_);
  }
  return p;
}

}  // namespace dynamo
