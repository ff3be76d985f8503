// Rebuild of a replica that holds none of its data: each partition streamed
// whole from another replica (PULL, then TRANSFER batches), the partitions
// still to fetch kept in <data-dir>/rebuild so that a crash resumes there.
#include "node/rebuild.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "dynamo/backend.h"
#include "dynamo/log.h"
#include "node/local_store.h"
#include "node/transfer.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

namespace {

// A pull is answered when its whole partition arrived, however long that
// takes; one that brings no batch for a while is abandoned sooner (Tick),
// and a late answer to it is ignored.
constexpr std::chrono::milliseconds kPullTimeout{10 * 60 * 1000};
// A failed pull is asked again (of the next replica) no sooner than this.
constexpr std::chrono::milliseconds kRetryAfter{1000};
// After this many failed pulls per replica of the partition (refused, or
// abandoned for want of batches), the partition is left to anti-entropy.
constexpr uint32_t kAttemptsPerSource = 5;

constexpr char kMarkerHeader[] = "dynamo-rebuild 1";

}  // namespace

Rebuild::Rebuild(NodeContext& ctx, const Transfer& transfer)
    : ctx_(ctx),
      transfer_(transfer),
      marker_(ctx.loop, ctx.options.data_dir + "/rebuild", "the rebuild's progress") {}

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

// The marker: its header, then "partitions all" (the ring was not known
// yet) or "partitions" and the numbers of those still to fetch.
void Rebuild::Start() {
  std::ifstream in(marker_.path());
  if (in && ctx_.options.rebuild_streams == 0) {
    in.close();
    log::Info("--rebuild-streams 0: the rebuild " + marker_.path() +
              " records is left to anti-entropy");
    return SaveMarker();  // state idle: removes it
  }
  if (ctx_.options.rebuild_streams == 0) return;  // refilled by anti-entropy
  // What a marker says is still to fetch: "all", a list, or nothing (no
  // marker, or the last partition had arrived).
  bool resume_all = false;
  std::deque<uint32_t> resume;
  if (in) {
    std::string header, line;
    std::getline(in, header);
    std::getline(in, line);
    std::istringstream words(line);
    std::string word;
    words >> word;
    if (header != kMarkerHeader || word != "partitions") {
      log::Warn(marker_.path() + " is not a rebuild marker; rebuilding every partition");
      resume_all = true;
    } else if (line.find("all") != std::string::npos) {
      resume_all = true;
    } else {
      uint32_t p = 0;
      while (words >> p) resume.push_back(p);
    }
  }
  // A node whose engine holds no key rebuilds every partition, whatever a
  // marker says (the engine may have been wiped again since). One that
  // holds keys resumes what its marker lists.
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
      [this, resume_all, resume = std::move(resume)](Result<bool> any) mutable {
        if (!any.ok()) {
          log::Warn("cannot tell whether the engine is empty: " + any.status().ToString());
          state_ = State::kIdle;
          return;
        }
        started_ = ctx_.loop.Now();
        keys_at_start_ = transfer_.keys_received();
        bytes_at_start_ = transfer_.bytes_received();
        if (!*any || resume_all) {
          if (resume_all) log::Info("resuming the rebuild of this replica: every partition");
          state_ = State::kWaitingForRing;
          SaveMarker();
          return Tick();
        }
        if (resume.empty()) {
          state_ = State::kIdle;
          return SaveMarker();  // removes a marker whose last partition had arrived
        }
        log::Info("resuming the rebuild of this replica: " + std::to_string(resume.size()) +
                  " partitions left");
        todo_ = std::move(resume);
        total_ = static_cast<uint32_t>(todo_.size());
        state_ = State::kRunning;
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
  const auto now = ctx_.loop.Now();
  // A pull is answered only when its partition has streamed, so it is
  // judged by the batches: one out for a while, while no batch arrived
  // for a while either (its request or answer lost, its source dead or
  // cut off), is abandoned (a late answer to it is ignored) and asked of
  // the next replica.
  const auto quiet =
      std::chrono::milliseconds(ctx_.options.failure_timeout_ms) + 2 * ctx_.RequestTimeout();
  if (now - transfer_.last_received() > quiet) {
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (now - it->second.sent > quiet) {
        log::Warn("rebuild: no batch of partition " + std::to_string(it->first) + " from " +
                  it->second.source + " for a while; will ask again");
        Failed(it->first);
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Partitions whose pull failed went to the back, to be asked again once
  // their time comes; a pass over the queue starts what it can.
  for (size_t n = todo_.size(); n > 0 && in_flight_.size() < ctx_.options.rebuild_streams; --n) {
    const uint32_t p = todo_.front();
    todo_.pop_front();
    auto retry = retry_at_.find(p);
    if (retry != retry_at_.end() && retry->second > now) {
      todo_.push_back(p);
      continue;
    }
    Pull(p);
  }
}

void Rebuild::Failed(uint32_t partition) {
  ++attempts_[partition];
  retry_at_[partition] = ctx_.loop.Now() + kRetryAfter;
  todo_.push_back(partition);
}

void Rebuild::Pull(uint32_t partition) {
  const Ring& ring = ctx_.cluster.ring();
  if (ring.empty() || !ring.Contains(ctx_.options.node_id)) {
    todo_.push_back(partition);  // no ring that places this node: wait for one
    return;
  }
  if (partition >= ring.partitions()) return Done(partition);
  const auto pref = ring.PreferenceList(partition);
  if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end()) {
    return Done(partition);  // the ring changed: no longer this node's to fetch
  }
  std::vector<std::string> sources;
  for (const auto& n : pref) {
    if (n == ctx_.options.node_id || ctx_.IsDownNode(n)) continue;
    const Member* m = ctx_.cluster.Find(n);
    if (m != nullptr && m->state == MemberState::kUp) sources.push_back(n);
  }
  const size_t replicas = pref.size() > 1 ? pref.size() - 1 : 1;
  if (attempts_[partition] >= kAttemptsPerSource * replicas) {
    log::Warn("rebuild: no replica could stream partition " + std::to_string(partition) +
              " after " + std::to_string(attempts_[partition]) +
              " attempts; it is left to anti-entropy");
    return Done(partition);
  }
  if (sources.empty()) {
    todo_.push_back(partition);  // no replica to ask now; the next round tries again
    return;
  }
  // Spread over the replicas, and to the next one after a failure.
  const std::string source = sources[(partition + attempts_[partition]) % sources.size()];
  const uint64_t generation = ++pulls_;
  in_flight_[partition] = InFlight{source, generation, ctx_.loop.Now()};
  Request req;
  req.type = MsgType::kPull;
  req.partition = partition;
  req.node_id = ctx_.options.node_id;
  ctx_.loop.Call(ctx_.EndpointOf(source), req, kPullTimeout,
                 [this, partition, source, generation](Result<Reply> rep) {
                   auto it = in_flight_.find(partition);
                   if (it == in_flight_.end() || it->second.generation != generation) return;
                   in_flight_.erase(it);
                   if (state_ != State::kRunning) return;
                   if (rep.ok() && rep->type == MsgType::kAck) {
                     Done(partition);
                     return Tick();
                   }
                   const std::string why =
                       !rep.ok() ? rep.status().ToString() : rep->ToStatus().ToString();
                   log::Warn("rebuild: pulling partition " + std::to_string(partition) + " from " +
                             source + " failed (" + why + "); will ask again");
                   Failed(partition);
                   Tick();
                 });
}

void Rebuild::Done(uint32_t partition) {
  attempts_.erase(partition);
  retry_at_.erase(partition);
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
      for (const auto& [p, pull] : in_flight_) left.push_back(p);
      std::sort(left.begin(), left.end());
      for (uint32_t p : left) {
        bytes += ' ';
        bytes += std::to_string(p);
      }
    }
    bytes += "\n";
  }
  if (remove) {
    marker_.Remove();
  } else {
    marker_.Write(std::move(bytes));
  }
}

Rebuild::Progress Rebuild::progress() const {
  Progress p;
  p.state = state_;
  p.partitions_total = total_;
  p.partitions_done = done_;
  p.completed = completed_;
  for (const auto& [part, pull] : in_flight_) p.in_flight.emplace_back(part, pull.source);
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
