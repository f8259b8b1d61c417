// Elementwise functions of 16-float vectors (gemm.h's Vec) for the kernels: exp, sigmoid, tanh.
#pragma once

#include <cstdint>

#include "gemm.h"

namespace kernels {

// exp(x) for x <= 0, within 2 ulp (Cephes' expf polynomial): exp(r) 2^n with n = round(x / ln 2).
inline Vec ExpNonPositive(Vec x) {
  typedef int32_t Int __attribute__((vector_size(64), aligned(4)));
  x = x < -87.0f ? Vec{} - 87.0f : x;  // exp(-87) is the smallest normal float's order; below it, 2^n underflows
  const Int n = -__builtin_convertvector(0.5f - x * 1.44269504088896341f, Int);  // round(x / ln 2), as x <= 0
  const Vec nf = __builtin_convertvector(n, Vec);
  const Vec r = x - nf * 0.693359375f + nf * 2.12194440e-4f;  // x - n ln 2, ln 2 in two parts
  Vec p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * (Vec)((n + 127) << 23);
}

inline float Sum(Vec v) {
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += v[l];
  return sum;
}

// 1 / (1 + exp(-x)), from e = exp(-|x|) <= 1, which cannot overflow.
inline Vec Sigmoid(Vec x) {
  const Vec e = ExpNonPositive(x > 0.0f ? -x : x);
  const Vec one_plus = e + 1.0f;
  return x > 0.0f ? 1.0f / one_plus : e / one_plus;
}

// tanh(x), to a few ulp: (1 - e) / (1 + e) with e = exp(-2 |x|) for |x| >= 1/4, and below that, where
// 1 - e would cancel, its odd Taylor series to x^9 (the next term is under 4e-8 of the value).
inline Vec Tanh(Vec x) {
  const Vec a = x > 0.0f ? x : -x;
  const Vec e = ExpNonPositive(-2.0f * a);
  const Vec far = (1.0f - e) / (1.0f + e);
  const Vec a2 = a * a;
  const Vec near = a + a * a2 * (-1.0f / 3 + a2 * (2.0f / 15 + a2 * (-17.0f / 315 + a2 * (62.0f / 2835))));
  const Vec t = a < 0.25f ? near : far;
  return x < 0.0f ? -t : t;
}

}  // namespace kernels
