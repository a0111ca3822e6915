// The kernels' scratch ownership: ThreadPool names each chunk's participant (what picks a
// participant's buffers in the Workspace), and a Scratch buffer grows as std::vector::resize would.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/compute.h"
#include "kernels/workspace.h"
#include "util/thread_pool.h"

namespace smolvlm {
namespace {

TEST(ThreadPoolParticipants, EachChunkRunsOnItsOwnParticipant) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{100}}) {
      std::mutex mu;
      std::vector<std::pair<int, std::pair<size_t, size_t>>> chunks;
      pool.parallel_for(n, [&](size_t begin, size_t end, int participant) {
        std::lock_guard<std::mutex> lock(mu);
        chunks.push_back({participant, {begin, end}});
      });
      std::sort(chunks.begin(), chunks.end(),
                [](const auto& a, const auto& b) { return a.second < b.second; });
      size_t next = 0;
      std::vector<int> seen;
      for (const auto& [participant, range] : chunks) {
        EXPECT_EQ(range.first, next) << threads << " threads, n " << n;
        next = range.second;
        EXPECT_GE(participant, 0);
        EXPECT_LT(participant, pool.size());
        seen.push_back(participant);
      }
      EXPECT_EQ(next, n) << threads << " threads, n " << n;
      std::sort(seen.begin(), seen.end());
      EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end())
          << "a participant ran two chunks of one loop (" << threads << " threads, n " << n << ")";
      if (n == 1) {
        EXPECT_EQ(chunks.at(0).first, 0) << "an inline loop runs on the caller";
      }
    }
  }
}

TEST(Scratch, GrowsKeepingItsContentsAlignedAndZeroed) {
  kernels::Scratch scratch;
  int32_t* a = scratch.get<int32_t>(0, 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % kernels::Scratch::kAlign, 0u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a[i], 0);
    a[i] = i + 1;
  }
  float* other = scratch.get<float>(1, 3);  // another slot: its own memory
  other[0] = 9.0f;
  EXPECT_EQ(scratch.get<int32_t>(0, 2), a) << "asking for less keeps the buffer";
  int32_t* grown = scratch.get<int32_t>(0, 10000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(grown) % kernels::Scratch::kAlign, 0u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(grown[i], i + 1);
  for (int i = 5; i < 10000; ++i) ASSERT_EQ(grown[i], 0) << i;
  EXPECT_EQ(scratch.get<float>(1, 3)[0], 9.0f);
}

TEST(Scratch, ComputeHasOneParticipantPerPoolThread) {
  kernels::Compute cx(3, "generic");
  const kernels::Compute::Turn turn = cx.take_turn();
  EXPECT_TRUE(turn.lock.owns_lock());
  float* mine[3];
  for (int p = 0; p < 3; ++p) mine[p] = turn.workspace.participant(p).op.get<float>(0, 16);
  EXPECT_NE(mine[0], mine[1]);
  EXPECT_NE(mine[1], mine[2]);
  EXPECT_NE(turn.workspace.shared().get<float>(0, 16), mine[0]);
}

}  // namespace
}  // namespace smolvlm
