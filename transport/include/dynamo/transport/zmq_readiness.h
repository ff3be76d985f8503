// ZmqReadiness: when the loop must drain, or ask, a ZeroMQ socket it waits on
// through ZMQ_FD (docs/design.md, "ZmqLoop").
//
// ZMQ_FD becomes readable when libzmq signals the socket, and any libzmq call
// on the socket, a send included, may consume that signal. So a socket is
// *ready* (drain it) when its ZMQ_FD woke the loop, when ZMQ_EVENTS showed a
// message, or when its last drain stopped at its bound; and *touched* when it
// was sent on since it was last drained or asked. Only a touched socket needs
// asking before the loop sleeps (ZMQ_EVENTS costs libzmq a poll and a getpid):
// one drained to EAGAIN and not sent on since signals its ZMQ_FD when its next
// message arrives.
#pragma once

namespace dynamo {

class ZmqReadiness {
 public:
  void Signalled() { ready_ = true; }  // its ZMQ_FD woke the loop
  void Sent() { touched_ = true; }
  bool ready() const { return ready_; }
  // After a drain; to_eagain false when it stopped at its bound.
  void Drained(bool to_eagain) {
    ready_ = !to_eagain;
    if (to_eagain) touched_ = false;
  }
  // Before the loop sleeps: asks (ask() returns true when ZMQ_EVENTS shows a
  // message, or when asking failed) only if touched. True when ready.
  template <typename Ask>
  bool BeforeSleep(Ask ask) {
    if (touched_) {
      touched_ = false;
      if (ask()) ready_ = true;
    }
    return ready_;
  }

 private:
  bool ready_ = true;  // a new socket is drained once
  bool touched_ = false;
};

}  // namespace dynamo
