// C = A^T B for float32 A [R, M] and B [R, N], row-major, with many rows R and a narrow N (16, 32 or 64):
// the weight gradient of a position-wise product, which XLA's CPU dot runs at about a third of the rate
// of the same product untransposed (benchmarks/bench_wavenet_train.py --gradient-ablation measures its cost).
//
// Each thread takes a share of the rows. Within a block of rows that stays in cache, a tile of kRows
// rows of C (NV vectors of 16 floats each) lives in registers while the block's rows stream past it:
// per row of A and B, NV vector loads of B and kRows x NV fused multiply-adds with broadcast elements
// of A. The C++ vector extension compiles to AVX-512 or AVX2 by the -march the library is built with.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace {

namespace ffi = xla::ffi;
using Matrix = ffi::Buffer<ffi::F32, 2>;  // row-major float32 [rows, columns]
typedef float Vec __attribute__((vector_size(64), aligned(4)));
constexpr int64_t kBlockRows = 512;  // rows of A and B per cache block: 512 x (M + N) floats

// c[i0 : i0 + kRows, :] += a[t0 : t1, i0 : i0 + kRows]^T b[t0 : t1, :], b and c 16 * NV columns wide.
template <int NV, int kRows>
inline void Tile(const float* a, const float* b, float* c, int64_t t0, int64_t t1, int64_t m, int64_t i0) {
  constexpr int64_t n = 16 * NV;
  Vec sum[kRows][NV] = {};
  for (int64_t t = t0; t < t1; ++t) {
    Vec row[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) row[j] = *reinterpret_cast<const Vec*>(b + t * n + 16 * j);
    const float* a_t = a + t * m + i0;
#pragma GCC unroll 16
    for (int i = 0; i < kRows; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) sum[i][j] += a_t[i] * row[j];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) *reinterpret_cast<Vec*>(c + (i0 + i) * n + 16 * j) += sum[i][j];
  }
}

// c (M x 16 NV, zeroed by the caller) += the product over rows [r0, r1).
template <int NV>
void Accumulate(const float* a, const float* b, float* c, int64_t r0, int64_t r1, int64_t m) {
  constexpr int kRows = 24 / NV;  // 24 accumulators and NV rows of B: 28 of the 32 vector registers
  for (int64_t t0 = r0; t0 < r1; t0 += kBlockRows) {
    const int64_t t1 = t0 + kBlockRows < r1 ? t0 + kBlockRows : r1;
    int64_t i0 = 0;
    for (; i0 + kRows <= m; i0 += kRows) Tile<NV, kRows>(a, b, c, t0, t1, m, i0);
    for (; i0 + 4 <= m; i0 += 4) Tile<NV, 4>(a, b, c, t0, t1, m, i0);
    for (; i0 < m; ++i0) Tile<NV, 1>(a, b, c, t0, t1, m, i0);
  }
}

void AccumulateAny(const float* a, const float* b, float* c, int64_t r0, int64_t r1, int64_t m, int64_t n) {
  if (n == 64) Accumulate<4>(a, b, c, r0, r1, m);
  else if (n == 32) Accumulate<2>(a, b, c, r0, r1, m);
  else Accumulate<1>(a, b, c, r0, r1, m);
}

ffi::Error TransposedMatmul(Matrix a, Matrix b, ffi::Result<Matrix> c) {
  const int64_t rows = a.dimensions()[0], m = a.dimensions()[1], n = b.dimensions()[1];
  if (b.dimensions()[0] != rows || (n != 16 && n != 32 && n != 64)) {
    return ffi::Error::InvalidArgument("transposed_matmul: A [R, M] and B [R, N] with N = 16, 32 or 64");
  }
  // One share of the rows per core, each at least 8 blocks long; shares after the first sum into their own C.
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t shares = std::max<int64_t>(1, std::min(cores, rows / (8 * kBlockRows)));
  const int64_t share_rows = ((rows + shares - 1) / shares + kBlockRows - 1) / kBlockRows * kBlockRows;
  std::vector<std::vector<float>> partial(shares - 1, std::vector<float>(m * n, 0.0f));
  float* out = c->typed_data();
  std::fill(out, out + m * n, 0.0f);
  std::vector<std::thread> workers;
  for (int64_t s = 1; s < shares; ++s) {
    const int64_t end = s == shares - 1 ? rows : std::min(rows, (s + 1) * share_rows);
    workers.emplace_back(AccumulateAny, a.typed_data(), b.typed_data(), partial[s - 1].data(),
                         std::min(rows, s * share_rows), end, m, n);
  }
  AccumulateAny(a.typed_data(), b.typed_data(), out, 0, std::min(rows, share_rows), m, n);
  for (auto& worker : workers) worker.join();
  for (const auto& sum : partial) {
    for (int64_t k = 0; k < m * n; ++k) out[k] += sum[k];
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(TransposedMatmulHandler, TransposedMatmul,
                              ffi::Ffi::Bind().Arg<Matrix>().Arg<Matrix>().Ret<Matrix>());
