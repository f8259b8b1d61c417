// Splitting a kernel's rows across the machine's cores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace kernels {

// Shares of [0, rows): one per core, each a whole number of `quantum` rows and at least `min_rows` long.
inline int64_t NumShares(int64_t rows, int64_t min_rows) {
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, std::min(cores, rows / std::max<int64_t>(1, min_rows)));
}

// Calls work(share, first row, end row) for each of `shares` shares of [0, rows), share 0 on this thread.
template <class Work>
void ForShares(int64_t rows, int64_t shares, int64_t quantum, Work work) {
  const int64_t share_rows = ((rows + shares - 1) / shares + quantum - 1) / quantum * quantum;
  std::vector<std::thread> workers;
  for (int64_t s = 1; s < shares; ++s) {
    const int64_t end = s == shares - 1 ? rows : std::min(rows, (s + 1) * share_rows);
    workers.emplace_back(work, s, std::min(rows, s * share_rows), end);
  }
  work(0, 0, std::min(rows, share_rows));
  for (auto& worker : workers) worker.join();
}

}  // namespace kernels
