#include "dynamo/failure_detector.h"

#include <gtest/gtest.h>

namespace dynamo {
namespace {

using namespace std::chrono_literals;
using Clock = FailureDetector::Clock;

TEST(FailureDetectorTest, UnknownAndAnsweringPeersAreUp) {
  FailureDetector fd(3000ms);
  const auto t0 = Clock::now();
  EXPECT_FALSE(fd.IsDown("a", t0));
  fd.OnSent("a", t0);
  fd.OnAnswer("a", t0 + 10ms);
  EXPECT_FALSE(fd.IsDown("a", t0 + 1h));
}

TEST(FailureDetectorTest, APauseShorterThanTheTimeoutIsNotDown) {
  FailureDetector fd(3000ms);
  const auto t0 = Clock::now();
  fd.OnSent("a", t0);
  EXPECT_FALSE(fd.IsDown("a", t0 + 2999ms));
  fd.OnAnswer("a", t0 + 2999ms);
  EXPECT_FALSE(fd.IsDown("a", t0 + 10s));
}

TEST(FailureDetectorTest, UnansweredPastTheTimeoutIsDownUntilItAnswers) {
  FailureDetector fd(3000ms);
  const auto t0 = Clock::now();
  fd.OnSent("a", t0);
  fd.OnSent("a", t0 + 2s);  // later requests do not restart the clock
  EXPECT_TRUE(fd.IsDown("a", t0 + 3001ms));
  EXPECT_TRUE(fd.WantsProbe("a", t0 + 3001ms));
  fd.OnAnswer("a", t0 + 5s);
  EXPECT_FALSE(fd.IsDown("a", t0 + 5s));
  EXPECT_FALSE(fd.IsDown("b", t0 + 5s));
}

TEST(FailureDetectorTest, ABusyButAnsweringPeerNeverFlaps) {
  FailureDetector fd(3000ms);
  auto t = Clock::now();
  // Requests every 100 ms, each answered 2.5 s later: always something
  // outstanding, never longer than the timeout since the last answer.
  for (int i = 0; i < 200; ++i) {
    fd.OnSent("a", t);
    if (i >= 25) fd.OnAnswer("a", t);
    EXPECT_FALSE(fd.IsDown("a", t)) << i;
    t += 100ms;
  }
}

TEST(FailureDetectorTest, ProbesWhenQuietForHalfTheTimeout) {
  FailureDetector fd(3000ms);
  const auto t0 = Clock::now();
  EXPECT_TRUE(fd.WantsProbe("a", t0));  // never heard of
  fd.OnSent("a", t0);
  EXPECT_FALSE(fd.WantsProbe("a", t0 + 1s));  // a probe is out, not yet failed
  fd.OnAnswer("a", t0 + 1s);
  EXPECT_FALSE(fd.WantsProbe("a", t0 + 2s));
  EXPECT_TRUE(fd.WantsProbe("a", t0 + 2600ms));
}

}  // namespace
}  // namespace dynamo
