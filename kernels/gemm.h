// The register-tiled matrix product both kernels are built on, for float32 row-major matrices.
//
// C [rows, cols] (+)= A B, where B [depth, cols] has row stride ldb and A is read through two strides,
// A[i, k] = a[i * ai + k * ak]: (ai, ak) = (lda, 1) multiplies by A itself, (1, lda) by its transpose,
// so one loop serves x W and the weight gradient x^T g alike. Each block of kPanelRows rows and 16 NV
// columns of B is first copied contiguous (its rows, 1 KB apart in a 256-wide B, would share a sixteenth
// of L1's sets: 12-15% of the rate, single-threaded); then a tile of ROWS rows of C, NV vectors of 16
// floats each, lives in registers while the block streams past it: per row of the block, NV vector
// loads and ROWS x NV fused multiply-adds with broadcast elements of A. The C++ vector extension
// compiles to AVX-512 or AVX2 by the -march the library is built with.
#pragma once

#include <cstdint>

namespace kernels {

typedef float Vec __attribute__((vector_size(64), aligned(4)));  // 16 floats, unaligned loads allowed
constexpr int64_t kLanes = 16;
constexpr int64_t kPanelRows = 128;  // rows of B per block: 128 x 64 floats, 32 KB of a 48 KB L1

inline Vec Load(const float* p) { return *reinterpret_cast<const Vec*>(p); }
inline void Store(float* p, Vec v) { *reinterpret_cast<Vec*>(p) = v; }

// c[i, 16 j + l] (+)= sum over k < depth of A[i, k] b[k, 16 j + l], for i < ROWS and j < NV.
template <int NV, int ROWS>
inline void Tile(const float* a, int64_t ai, int64_t ak, const float* b, int64_t ldb, float* c, int64_t ldc,
                 int64_t depth, bool accumulate) {
  Vec sum[ROWS][NV] = {};
  for (int64_t k = 0; k < depth; ++k) {
    Vec row[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) row[j] = Load(b + k * ldb + kLanes * j);
#pragma GCC unroll 24
    for (int i = 0; i < ROWS; ++i) {
      const float x = a[i * ai + k * ak];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) sum[i][j] += x * row[j];
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      float* out = c + i * ldc + kLanes * j;
      Store(out, accumulate ? Load(out) + sum[i][j] : sum[i][j]);
    }
  }
}

// C [rows, cols] (+)= A [rows, depth] B [depth, cols], cols a multiple of 16 NV.
template <int NV>
void Product(const float* a, int64_t ai, int64_t ak, const float* b, int64_t ldb, float* c, int64_t ldc,
             int64_t rows, int64_t depth, int64_t cols, bool accumulate) {
  constexpr int kRows = 24 / NV;  // 24 accumulators and NV rows of B: 28 of AVX-512's 32 vector registers
  constexpr int64_t width = kLanes * NV;
  alignas(64) float panel[kPanelRows * width];
  for (int64_t j0 = 0; j0 < cols; j0 += width) {
    for (int64_t k0 = 0; k0 < depth; k0 += kPanelRows) {
      const int64_t k1 = k0 + kPanelRows < depth ? k0 + kPanelRows : depth;
      const float* block = b + k0 * ldb + j0;  // already contiguous when B is one block wide
      if (ldb != width) {
        for (int64_t k = 0; k < k1 - k0; ++k) {
          for (int j = 0; j < NV; ++j) Store(panel + k * width + kLanes * j, Load(block + k * ldb + kLanes * j));
        }
        block = panel;
      }
      const bool add = accumulate || k0 > 0;
      const float* a_k = a + k0 * ak;
      int64_t i = 0;
      for (; i + kRows <= rows; i += kRows) Tile<NV, kRows>(a_k + i * ai, ai, ak, block, width, c + i * ldc + j0, ldc, k1 - k0, add);
      for (; i + 4 <= rows; i += 4) Tile<NV, 4>(a_k + i * ai, ai, ak, block, width, c + i * ldc + j0, ldc, k1 - k0, add);
      for (; i < rows; ++i) Tile<NV, 1>(a_k + i * ai, ai, ak, block, width, c + i * ldc + j0, ldc, k1 - k0, add);
    }
  }
}

// `Product` for any cols that is a multiple of 16, with the widest tile that divides it.
inline void ProductOfWidth(const float* a, int64_t ai, int64_t ak, const float* b, int64_t ldb, float* c, int64_t ldc,
                           int64_t rows, int64_t depth, int64_t cols, bool accumulate) {
  if (cols % 64 == 0) Product<4>(a, ai, ak, b, ldb, c, ldc, rows, depth, cols, accumulate);
  else if (cols % 32 == 0) Product<2>(a, ai, ak, b, ldb, c, ldc, rows, depth, cols, accumulate);
  else Product<1>(a, ai, ak, b, ldb, c, ldc, rows, depth, cols, accumulate);
}

}  // namespace kernels
