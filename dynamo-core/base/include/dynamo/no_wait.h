// NoWaitScope: marks the extent in which the calling thread is an event loop
// that must not wait for a device.
//
// An engine that may be called on the loop for single keys (a file engine
// whose data sits in the page cache) answers a read that would have to go to
// the disk with Status::WouldBlock instead of waiting, while such a scope is
// open on the calling thread; the loop then runs the same call again on a
// worker thread, outside any scope. Scopes nest.
#pragma once

namespace dynamo {

class NoWaitScope {
 public:
  NoWaitScope() { ++depth(); }
  ~NoWaitScope() { --depth(); }
  NoWaitScope(const NoWaitScope&) = delete;
  NoWaitScope& operator=(const NoWaitScope&) = delete;

  // True while a scope is open on this thread.
  static bool Active() { return depth() > 0; }

 private:
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
};

}  // namespace dynamo
