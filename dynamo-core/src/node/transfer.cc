// State transfer (paper 4.9 of the join, 6.2): when ownership changes, the
// nodes that stop replicating a partition send its keys to the nodes that
// start, and drop them only after every new replica acknowledged them (and
// only if unchanged since). One hand-off at a time (and up to
// kPullsAtOnce pulls beside it), in slices small enough to hold in memory,
// sent in batches; a failed batch retries the partition later from the
// slice it stopped in.
#include "node/transfer.h"

#include <algorithm>

#include "dynamo/backend.h"
#include "dynamo/key_hash.h"
#include "dynamo/log.h"
#include "node/incarnation.h"
#include "node/local_store.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

namespace {

// A batch is one TRANSFER message; up to kInFlight of a slice's batches
// are unacknowledged at a time, so that the receiver merges one while the
// next is on the wire. A slice is what one scan holds in memory.
constexpr size_t kBatchBytes = 1u << 20;
constexpr size_t kBatchKeys = 4096;
constexpr size_t kInFlight = 2;
constexpr size_t kSliceKeys = 32768;
constexpr size_t kSliceBytes = 16u << 20;

// The share of partition `p`'s key-hash range that `r` covers.
double ShareOf(const HashRange& r, uint32_t p, uint32_t q) {
  const HashRange whole = PartitionHashRange(p, q);
  return (static_cast<double>(r.hi - r.lo) + 1) / (static_cast<double>(whole.hi - whole.lo) + 1);
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// One scanned slice on its way: batches cut from it in order, at most
// kInFlight of them unacknowledged.
struct Transfer::Slice {
  std::shared_ptr<Items> items;
  size_t next = 0;       // the first item not sent yet
  size_t in_flight = 0;  // batches sent and not answered by every target
  bool failed = false;   // some target refused or did not answer a batch
  // Handed on (dropped and the next slice scanned, or requeued): a late
  // call, from a batch's pause timer, finds nothing left to do.
  bool over = false;
};

Transfer::Transfer(NodeContext& ctx, Hooks hooks) : ctx_(ctx), hooks_(std::move(hooks)) {}

size_t Transfer::pending() const {
  size_t n = 0;
  for (const auto& t : queue_) n += !t->quiet || t->keys > 0;
  for (const auto& t : running_) n += !t->quiet || t->keys > 0;
  return n;
}

std::optional<Transfer::Sending> Transfer::sending() const {
  const Task* t = nullptr;  // the one that began first (a requeued hand-off began long ago)
  for (const auto& r : running_) {
    if (r->quiet && r->keys == 0) continue;
    if (t == nullptr || r->began < t->began) t = r.get();
  }
  if (t == nullptr) return std::nullopt;
  Sending s;
  s.partition = t->partition;
  s.to = t->targets;
  s.pull = t->pull;
  s.keys = t->keys;
  s.bytes = t->bytes;
  s.elapsed_s = std::chrono::duration<double>(ctx_.loop.Now() - t->began).count();
  const double slice = t->slice_keys == 0 ? 0
                                          : t->slice_share * static_cast<double>(t->slice_acked) /
                                                static_cast<double>(t->slice_keys);
  s.done = std::min(1.0, t->done_share + slice);
  if (s.done > 0) s.eta_s = s.elapsed_s * (1 - s.done) / s.done;
  return s;
}

bool Transfer::MayStart(const Task& task) const {
  size_t pulls = 0;
  for (const auto& t : running_) {
    if (!t->pull && !task.pull) return false;  // one hand-off at a time
    pulls += t->pull;
  }
  return !task.pull || pulls < kPullsAtOnce;
}

void Transfer::Stopped(const std::shared_ptr<Task>& task) {
  running_.erase(std::remove(running_.begin(), running_.end(), task), running_.end());
}

void Transfer::Plan(const Ring& old_ring, const Ring& new_ring) {
  if (old_ring.empty() || old_ring.partitions() != new_ring.partitions()) return;
  for (uint32_t p = 0; p < new_ring.partitions(); ++p) {
    const auto before = old_ring.PreferenceList(p);
    const auto after = new_ring.PreferenceList(p);
    std::vector<std::string> gained, lost;
    for (const auto& n : after) {
      if (!Has(before, n)) gained.push_back(n);
    }
    if (gained.empty()) continue;
    for (const auto& n : before) {
      if (!Has(after, n)) lost.push_back(n);
    }
    // Those who stop replicating hand over; when nobody stops (the cluster
    // still has fewer than N nodes) or those who stop were removed (dead),
    // the first old replica still here does (anti-entropy backs it up).
    bool lost_alive = false;
    for (const auto& n : lost) {
      const Member* m = ctx_.cluster.Find(n);
      lost_alive = lost_alive || (m != nullptr && m->state != MemberState::kRemoved);
    }
    std::string first_kept;
    for (const auto& n : before) {
      if (Has(after, n)) {
        first_kept = n;
        break;
      }
    }
    const bool sender = lost_alive     ? Has(lost, ctx_.options.node_id)
                        : lost.empty() ? before.front() == ctx_.options.node_id
                                       : first_kept == ctx_.options.node_id;
    if (!sender) continue;
    auto task = std::make_shared<Task>();
    task->partition = p;
    task->targets = std::move(gained);
    task->drop_after = Has(lost, ctx_.options.node_id);
    queue_.push_back(std::move(task));
  }
  if (!queue_.empty()) {
    log::Info(std::to_string(queue_.size()) + " partition transfers pending");
  }
  Tick();
}

// Keys this node holds in partitions it does not replicate (a hand-off cut
// short by a crash, a leave resumed after a restart, a write that reached
// it on a stale ring) go to the partition's replicas and are then dropped
// here. Partitions with no keys cost one empty scan.
void Transfer::PlanOrphans() {
  const Ring& ring = ctx_.cluster.ring();
  if (ring.empty() || !queue_.empty() || !running_.empty()) return;
  for (uint32_t p = 0; p < ring.partitions(); ++p) {
    auto pref = ring.PreferenceList(p);
    if (Has(pref, ctx_.options.node_id)) continue;
    auto task = std::make_shared<Task>();
    task->partition = p;
    task->targets = std::move(pref);
    task->drop_after = true;
    task->quiet = true;
    queue_.push_back(std::move(task));
  }
  Tick();
}

void Transfer::Tick() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!MayStart(**it)) {
      ++it;
      continue;
    }
    auto task = *it;
    it = queue_.erase(it);
    running_.push_back(task);
    max_pulls_at_once_ = std::max<size_t>(
        max_pulls_at_once_,
        std::count_if(running_.begin(), running_.end(), [](const auto& t) { return t->pull; }));
    if (!task->started) task->began = ctx_.loop.Now();
    // Through the loop: with an inline engine a scan answers at once, and
    // would re-enter Tick while this walks the queue.
    ctx_.loop.Post([this, task] { ScanSlice(task); });
  }
  if (queue_.empty() && running_.empty()) {
    const Member* self = ctx_.cluster.Find(ctx_.options.node_id);
    if (self != nullptr && self->state == MemberState::kLeaving && !ctx_.cluster.ring().empty() &&
        !ctx_.cluster.ring().Contains(ctx_.options.node_id) &&
        (!hooks_.handoff_idle || hooks_.handoff_idle())) {
      // Everything handed off, hints included: this node is out of the cluster.
      log::Info("left the cluster: every partition and hint handed off");
      if (hooks_.on_left) hooks_.on_left();
    }
    if (round_partitions_ > 0) {
      log::Info("sent " + std::to_string(round_partitions_) + " partitions (" +
                std::to_string(round_keys_) + " keys) to new or rebuilding replicas");
      round_partitions_ = round_keys_ = 0;
    }
  }
}

// A partition moves in slices: a key-hash range is scanned whole when it
// holds at most kSliceKeys keys and kSliceBytes; a larger one is split in
// halves (engines scan in no particular order, so a scan cannot resume
// midway). Each running transfer holds one slice in memory (so at most
// 1 + kPullsAtOnce slices); a failure resumes at the slice it stopped in;
// an empty or small partition is one scan.
void Transfer::ScanSlice(std::shared_ptr<Task> task) {
  if (!task->started) {
    task->pending.push_back(PartitionHashRange(task->partition, ctx_.cluster.ring().partitions()));
    task->started = true;
  }
  if (task->pending.empty()) return Finish(task);
  const HashRange range = task->pending.back();
  struct Scanned {
    Items items;
    bool too_big = false;
  };
  ctx_.loop.OnEngineBulk<Result<Scanned>>(
      [this, range]() -> Result<Scanned> {
        Scanned slice;
        size_t bytes = 0;
        const bool splittable = range.lo < range.hi;
        Status s = ctx_.store.backend().Scan(
            range.lo, range.hi, [&](std::string_view k, uint64_t, std::string_view v) {
              if (splittable && (slice.items.size() >= kSliceKeys || bytes >= kSliceBytes)) {
                slice.too_big = true;
                return false;
              }
              slice.items.emplace_back(std::string(k), std::string(v));
              bytes += k.size() + v.size();
              return true;
            });
        if (!s.ok()) return s;
        if (slice.too_big) slice.items.clear();
        return slice;
      },
      [this, task, range](Result<Scanned> slice) {
        if (!slice.ok()) {
          log::Warn("transfer of partition " + std::to_string(task->partition) +
                    " cannot scan: " + slice.status().ToString());
          return SliceFailed(task);
        }
        if (slice->too_big) {
          // Halve the range and go on with its lower half.
          const uint64_t mid = range.lo + (range.hi - range.lo) / 2;
          task->pending.pop_back();
          task->pending.push_back({mid + 1, range.hi});
          task->pending.push_back({range.lo, mid});
          return ctx_.loop.Post([this, task] { ScanSlice(task); });
        }
        task->slice_share = ShareOf(range, task->partition, ctx_.cluster.ring().partitions());
        task->slice_keys = slice->items.size();
        task->slice_acked = 0;
        auto sending = std::make_shared<Slice>();
        sending->items = std::make_shared<Items>(std::move(slice->items));
        SendBatches(task, std::move(sending));
      });
}

void Transfer::SendBatches(std::shared_ptr<Task> task, std::shared_ptr<Slice> slice) {
  const Items& items = *slice->items;
  if (slice->over) return;
  if (slice->failed || slice->next >= items.size()) {
    if (slice->in_flight > 0) return;  // the last answer calls again
    slice->over = true;
    if (slice->failed) return SliceFailed(task);
    return DropSlice(task, slice->items);
  }
  if (slice->in_flight >= kInFlight) return;
  if (slice->next == 0 && task->quiet && task->keys == 0) {
    log::Info("partition " + std::to_string(task->partition) +
              ": keys held here belong to its replicas; handing them over");
  }
  wire::RequestView batch;
  batch.type = MsgType::kTransfer;
  const size_t offset = slice->next;
  size_t bytes = 0, end = offset;
  while (end < items.size() && bytes < kBatchBytes && end - offset < kBatchKeys) {
    bytes += items[end].first.size() + items[end].second.size();
    batch.batch.emplace_back(items[end].first, items[end].second);
    ++end;
  }
  slice->next = end;
  ++slice->in_flight;
  max_batches_in_flight_ = std::max(max_batches_in_flight_, slice->in_flight);
  auto remaining = std::make_shared<size_t>(task->targets.size());
  auto failed = std::make_shared<bool>(false);
  const auto sent = ctx_.loop.Now();
  for (const auto& target : task->targets) {
    ctx_.loop.Call(ctx_.EndpointOf(target), batch, ctx_.RequestTimeout() * 5,
                   [this, task, slice, keys = end - offset, bytes, remaining, failed, target,
                    sent](Result<Reply> rep) {
                     if (!rep.ok() || !rep->ToStatus().ok() || rep->type != MsgType::kAck) {
                       *failed = true;
                       log::Warn("transfer of partition " + std::to_string(task->partition) +
                                 " to " + target + " failed" + (task->pull ? "" : "; will retry"));
                     }
                     if (--*remaining > 0) return;
                     --slice->in_flight;
                     if (*failed) {
                       slice->failed = true;
                       return SendBatches(task, slice);
                     }
                     task->keys += keys;
                     task->slice_acked += keys;
                     task->bytes += bytes;
                     keys_transferred_ += keys;
                     bytes_transferred_ += bytes;
                     round_keys_ += keys;
                     // No more than the background share of the time.
                     const auto pause = ctx_.background.PauseAfter(ctx_.loop.Now() - sent);
                     if (pause.count() == 0) return SendBatches(task, slice);
                     ctx_.loop.After(pause, [this, task, slice] { SendBatches(task, slice); });
                   });
  }
  // The window is not full yet: the next batch goes at once.
  SendBatches(task, slice);
}

// A batch of the slice failed. Merges are idempotent, so the slice is sent
// again later, to the partition's replicas as they are then: a target that
// died and was removed meanwhile is replaced. A pull is answered with the
// error instead; the puller asks again, here or elsewhere.
void Transfer::SliceFailed(const std::shared_ptr<Task>& task) {
  AnswerPulls(*task, Reply::Error(0, Status::Unavailable("streaming partition " +
                                                         std::to_string(task->partition) +
                                                         " failed; ask again")));
  Stopped(task);
  task->EndSlice(/*finished=*/false);
  if (!task->pull) {
    Retarget(task);
    queue_.push_back(task);
  }
  ctx_.loop.Post([this] { Tick(); });
}

void Transfer::AnswerPulls(Task& task, const Reply& answer) {
  for (auto& [identity, id] : task.pullers) {
    Reply r = answer;
    r.id = id;
    ctx_.Reply(identity, r);
  }
  task.pullers.clear();
}

void Transfer::ServePull(std::string identity, const RequestView& req) {
  const Ring& ring = ctx_.cluster.ring();
  const std::string puller(req.node_id);
  auto refuse = [&](const std::string& why) {
    ctx_.Reply(identity, Reply::Error(req.id, Status::Unavailable(why)));
  };
  if (ring.empty() || req.partition >= ring.partitions()) {
    return ctx_.Reply(identity,
                      Reply::Error(req.id, Status::InvalidArgument("no partition " +
                                                                   std::to_string(req.partition) +
                                                                   " in this node's ring")));
  }
  const auto pref = ring.PreferenceList(req.partition);
  if (!Has(pref, ctx_.options.node_id)) {
    return refuse("this node does not replicate partition " + std::to_string(req.partition));
  }
  if (ctx_.EndpointOf(puller).empty() || puller == ctx_.options.node_id) {
    return refuse("node '" + puller + "' is not a member this node knows");
  }
  if (!Has(pref, puller)) {  // the two rings differ: the puller asks again later
    return refuse("node '" + puller + "' does not replicate partition " +
                  std::to_string(req.partition) + " in ring version " +
                  std::to_string(ring.version()));
  }
  // A queued transfer of the partition to the puller that has not begun (a
  // hand-off, or an earlier pull whose answer was lost) serves both. One
  // that began may have sent slices before the puller lost them (it
  // restarted) or before it was a target (Retarget): a pull gets its own.
  auto covers = [&](const std::shared_ptr<Task>& t) {
    return t && !t->started && t->partition == req.partition && Has(t->targets, puller);
  };
  for (auto& t : queue_) {
    if (covers(t)) {
      t->pullers.emplace_back(std::move(identity), req.id);
      return;
    }
  }
  auto task = std::make_shared<Task>();
  task->partition = req.partition;
  task->targets = {puller};
  task->pull = true;
  task->pullers.emplace_back(std::move(identity), req.id);
  queue_.push_front(std::move(task));
  Tick();
}

// Every new replica acknowledged the slice: a node that no longer
// replicates the partition drops those keys, then the next slice goes.
void Transfer::DropSlice(std::shared_ptr<Task> task, std::shared_ptr<Items> items) {
  const auto now = ctx_.cluster.ring().PreferenceList(task->partition);
  const bool drop = task->drop_after && !Has(now, ctx_.options.node_id) && !items->empty();
  if (!drop) {
    task->renamed = false;  // it may be a replica again, and write under its name
    NextSlice(task);
    // Through the loop's queue, not a nested call: with an inline engine
    // every step completes at once, and a partition's slices would nest.
    return ctx_.loop.Post([this, task] { ScanSlice(task); });
  }
  // This node may have written these keys; if one comes back to it, its
  // next dots must not repeat those others hold (node/incarnation.h). Once
  // per hand-off, not per slice: every new name is a new clock entry.
  if (!task->renamed) {
    ctx_.actor.Set(
        Incarnation::Rename(ctx_.options.node_id, ctx_.loop.WallMillis(), ctx_.actor.Get()));
    task->renamed = true;
  }
  ctx_.loop.OnEngineBulk<Status>(
      [this, items] {
        // Only what was handed off: a key merged into since (a hint, a
        // write on the old ring) stays, for the next sweep to hand over.
        for (const auto& [k, v] : *items) {
          Status s = ctx_.store.RemoveIfUnchanged(k, v);
          if (!s.ok()) return s;
        }
        return Status::OK();
      },
      [this, task](Status s) {
        if (!s.ok()) log::Warn("dropping a handed-off partition failed: " + s.ToString());
        NextSlice(task);
        ctx_.loop.Post([this, task] { ScanSlice(task); });
      });
}

void Transfer::Retarget(const std::shared_ptr<Task>& task) {
  std::vector<std::string> now;
  for (const auto& n : ctx_.cluster.ring().PreferenceList(task->partition)) {
    if (n != ctx_.options.node_id) now.push_back(n);
  }
  if (now.empty() || now == task->targets) return;
  // Those still replicas keep their place; new replicas are added.
  std::vector<std::string> targets;
  for (const auto& n : task->targets) {
    if (Has(now, n)) targets.push_back(n);
  }
  for (const auto& n : now) {
    if (!Has(targets, n) && (task->drop_after || targets.empty())) targets.push_back(n);
  }
  if (!targets.empty()) task->targets = std::move(targets);
}

void Transfer::NextSlice(const std::shared_ptr<Task>& task) {
  if (!task->pending.empty()) task->pending.pop_back();
  task->EndSlice(/*finished=*/true);
}

void Transfer::Finish(std::shared_ptr<Task> task) {
  // A pull of an empty partition (a new replica of an empty cluster) moved
  // nothing and counts as nothing.
  if ((!task->quiet && !task->pull) || task->keys > 0) {
    ++round_partitions_;
    ++partitions_transferred_;
  }
  log::Debug("partition " + std::to_string(task->partition) + ": " + std::to_string(task->keys) +
             " keys sent to " + std::to_string(task->targets.size()) + " replica(s)");
  AnswerPulls(*task, Reply::Ack(0));
  Stopped(task);
  ctx_.loop.Post([this] { Tick(); });
}

void Transfer::ServeTransfer(std::string identity, const RequestView& req) {
  // Decoding and merging a batch (up to kBatchKeys sets) is worker work, not
  // the loop's. A bad entry refuses the whole batch before anything is
  // stored; the rest is merged with one engine write per lock stripe. The
  // loop copies the batch into one buffer (a string per key and set cost
  // the loop most of its time while a replica was rebuilt).
  struct Batch {
    std::string bytes;
    std::vector<std::pair<std::string_view, std::string_view>> items;
  };
  auto batch = std::make_shared<Batch>();
  size_t total = 0;
  for (const auto& [k, v] : req.batch) total += k.size() + v.size();
  batch->bytes.reserve(total);  // never grows again: the views stay valid
  batch->items.reserve(req.batch.size());
  for (const auto& [k, v] : req.batch) {
    const size_t at = batch->bytes.size();
    batch->bytes.append(k).append(v);
    const std::string_view all(batch->bytes);
    batch->items.emplace_back(all.substr(at, k.size()), all.substr(at + k.size(), v.size()));
  }
  ctx_.loop.OnEngineBulk<Status>(
      [this, batch] {
        std::vector<SiblingSet> sets;
        sets.reserve(batch->items.size());
        for (const auto& [k, v] : batch->items) {
          auto set = SiblingSet::Decode(v);
          if (!set.ok() || k.empty()) {
            return Status::InvalidArgument("transfer batch holds a bad entry");
          }
          sets.push_back(std::move(set).value());
        }
        std::vector<LocalStore::Incoming> incoming;
        incoming.reserve(sets.size());
        for (size_t i = 0; i < sets.size(); ++i) {
          incoming.push_back({batch->items[i].first, &sets[i]});
        }
        if (Status s = ctx_.store.MergeBatch(incoming); !s.ok()) return s;
        // The sender deletes its copies (hints, a handed-off slice) on our
        // ack: make ours durable first, whatever the engine's sync policy.
        return ctx_.store.Sync();
      },
      [this, batch, identity = std::move(identity), id = req.id](Status s) {
        last_received_ = ctx_.loop.Now();
        if (s.ok()) {
          keys_received_ += batch->items.size();
          bytes_received_ += batch->bytes.size();
        }
        ctx_.Reply(identity, s.ok() ? Reply::Ack(id) : Reply::Error(id, s));
      });
}

}  // namespace dynamo
