// C = A^T B for float32 A [R, M] and B [R, N], row-major, with many rows R and a narrow N (16, 32 or 64):
// the weight gradient of a position-wise product, which XLA's CPU dot runs at about a third of the rate
// of the same product untransposed (benchmarks/bench_wavenet_train.py --gradient-ablation measures its cost).
// Each core sums its own share of the rows, in blocks that stay in cache (gemm.h).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "gemm.h"
#include "threads.h"
#include "xla/ffi/api/ffi.h"

namespace {

namespace ffi = xla::ffi;
using Matrix = ffi::Buffer<ffi::F32, 2>;  // row-major float32 [rows, columns]
constexpr int64_t kBlockRows = 512;  // share granularity: each share a whole number of 512 rows

// c [M, N] = the product over rows [r0, r1).
void ProductOfRows(const float* a, const float* b, float* c, int64_t r0, int64_t r1, int64_t m, int64_t n) {
  std::fill(c, c + m * n, 0.0f);
  kernels::ProductOfWidth(a + r0 * m, 1, m, b + r0 * n, n, c, n, m, r1 - r0, n, true);
}

ffi::Error TransposedMatmul(Matrix a, Matrix b, ffi::Result<Matrix> c) {
  const int64_t rows = a.dimensions()[0], m = a.dimensions()[1], n = b.dimensions()[1];
  if (b.dimensions()[0] != rows || (n != 16 && n != 32 && n != 64)) {
    return ffi::Error::InvalidArgument("transposed_matmul: A [R, M] and B [R, N] with N = 16, 32 or 64");
  }
  // Each share at least 8 blocks long; shares after the first sum into their own C.
  const int64_t shares = kernels::NumShares(rows, 8 * kBlockRows);
  std::vector<std::vector<float>> partial(shares - 1, std::vector<float>(m * n));
  float* out = c->typed_data();
  kernels::ForShares(rows, shares, kBlockRows, [&](int64_t share, int64_t r0, int64_t r1) {
    ProductOfRows(a.typed_data(), b.typed_data(), share ? partial[share - 1].data() : out, r0, r1, m, n);
  });
  for (const auto& sum : partial) {
    for (int64_t k = 0; k < m * n; ++k) out[k] += sum[k];
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(TransposedMatmulHandler, TransposedMatmul,
                              ffi::Ffi::Bind().Arg<Matrix>().Arg<Matrix>().Ret<Matrix>());
