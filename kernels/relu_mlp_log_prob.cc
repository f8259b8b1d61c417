// log softmax(relu(relu(x W1 + b1) W2 + b2) W3 + b3)[target] per row, and its gradient: the WaveNet's
// output head and its likelihood, fused.
//
// XLA runs the head as separate products whose [R, 256]-wide intermediates go to memory and come back,
// forward and backward, at about 90 GFLOP/s in all on a 2-core AVX-512 Xeon: 300 ms at 16,000 rows, timed
// alone, of a 450-500 ms step (benchmarks/bench_wavenet_train.py --without-kernels times the whole step). Here each core takes a share of the rows, a
// chunk of kChunkRows at a time, and runs every product of a chunk while its rows are in cache: the
// forward pass keeps the two hidden activations and the softmax for the backward one, which sums each
// core's weight gradients in its own buffers.
//
// Row-major float32 throughout; x [R, K], W1 [K, C], W2 [C, D], W3 [D, V], every width a multiple of 16.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gemm.h"
#include "threads.h"
#include "vector_math.h"
#include "xla/ffi/api/ffi.h"

namespace {

namespace ffi = xla::ffi;
using kernels::kLanes;
using kernels::Load;
using kernels::ProductOfWidth;
using kernels::Store;
using kernels::Vec;
using kernels::ExpNonPositive;
using kernels::Sum;
using Matrix = ffi::Buffer<ffi::F32, 2>;
using Vector = ffi::Buffer<ffi::F32, 1>;
using Labels = ffi::Buffer<ffi::S32, 1>;

constexpr int64_t kChunkRows = 96;  // rows whose products run together: 96 x (K + C + D + V) floats in cache

// y [rows, cols] = relu(y + bias).
void AddBiasRelu(float* y, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; j += kLanes) {
      const Vec v = Load(y + i * cols + j) + Load(bias + j);
      Store(y + i * cols + j, v > 0.0f ? v : Vec{});
    }
  }
}

// logits [rows, V] + bias -> their softmax in place; log_prob[i] = log softmax[i, labels[i]] (NaN for a label
// outside [0, V)).
void Softmax(float* logits, const float* bias, const int32_t* labels, float* log_prob, int64_t rows, int64_t v) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = logits + i * v;
    Vec top = Vec{} - std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < v; j += kLanes) {
      const Vec logit = Load(row + j) + Load(bias + j);
      Store(row + j, logit);
      top = logit > top ? logit : top;
    }
    const int32_t label = labels[i];
    const bool known = label >= 0 && label < v;
    const float label_logit = known ? row[label] : 0.0f;
    float max = top[0];
    for (int l = 1; l < kLanes; ++l) max = std::max(max, top[l]);
    Vec total{};
    for (int64_t j = 0; j < v; j += kLanes) {
      const Vec e = ExpNonPositive(Load(row + j) - max);
      Store(row + j, e);
      total += e;
    }
    const float sum = Sum(total);
    log_prob[i] = known ? label_logit - max - std::log(sum) : std::numeric_limits<float>::quiet_NaN();
    for (int64_t j = 0; j < v; j += kLanes) Store(row + j, Load(row + j) / sum);
  }
}

ffi::Error Forward(Matrix x, Matrix w1, Vector b1, Matrix w2, Vector b2, Matrix w3, Vector b3, Labels labels,
                   ffi::Result<Vector> log_prob, ffi::Result<Matrix> h1, ffi::Result<Matrix> h2,
                   ffi::Result<Matrix> probs) {
  const int64_t rows = x.dimensions()[0], k = x.dimensions()[1], c = w1.dimensions()[1], d = w2.dimensions()[1],
                v = w3.dimensions()[1];
  if (k % kLanes || c % kLanes || d % kLanes || v % kLanes) {
    return ffi::Error::InvalidArgument("relu_mlp_log_prob: every width must be a multiple of 16");
  }
  const int64_t shares = kernels::NumShares(rows, 4 * kChunkRows);
  kernels::ForShares(rows, shares, kChunkRows, [&](int64_t, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r += kChunkRows) {
      const int64_t n = std::min(kChunkRows, r1 - r);
      float *y1 = h1->typed_data() + r * c, *y2 = h2->typed_data() + r * d, *p = probs->typed_data() + r * v;
      ProductOfWidth(x.typed_data() + r * k, k, 1, w1.typed_data(), c, y1, c, n, k, c, false);
      AddBiasRelu(y1, b1.typed_data(), n, c);
      ProductOfWidth(y1, c, 1, w2.typed_data(), d, y2, d, n, c, d, false);
      AddBiasRelu(y2, b2.typed_data(), n, d);
      ProductOfWidth(y2, d, 1, w3.typed_data(), v, p, v, n, d, v, false);
      Softmax(p, b3.typed_data(), labels.typed_data() + r, log_prob->typed_data() + r, n, v);
    }
  });
  return ffi::Error::Success();
}

// One core's weight gradients, each summed over its rows: W1 [K, C], b1 [C], W2 [C, D], b2 [D], W3 [D, V], b3 [V].
enum { kW1, kB1, kW2, kB2, kW3, kB3, kParts };
using Gradients = std::array<float*, kParts>;

// column_sums [cols] += the sums over rows of g [rows, cols]; g *= (h > 0) first where h is given.
void MaskAndSum(float* g, const float* h, float* column_sums, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; j += kLanes) {
      Vec value = Load(g + i * cols + j);
      if (h) {
        value = Load(h + i * cols + j) > 0.0f ? value : Vec{};
        Store(g + i * cols + j, value);
      }
      Store(column_sums + j, Load(column_sums + j) + value);
    }
  }
}

ffi::Error Backward(Matrix x, Matrix w1t, Matrix w2t, Matrix w3t, Matrix h1, Matrix h2, Matrix probs, Labels labels,
                    Vector cotangent, ffi::Result<Matrix> dx, ffi::Result<Matrix> dw1, ffi::Result<Vector> db1,
                    ffi::Result<Matrix> dw2, ffi::Result<Vector> db2, ffi::Result<Matrix> dw3,
                    ffi::Result<Vector> db3) {
  const int64_t rows = x.dimensions()[0], k = x.dimensions()[1], c = h1.dimensions()[1], d = h2.dimensions()[1],
                v = probs.dimensions()[1];
  const int64_t shares = kernels::NumShares(rows, 4 * kChunkRows);
  // Share 0 sums into the outputs, the others into their own buffers, added at the end.
  const int64_t sizes[kParts] = {k * c, c, c * d, d, d * v, v};
  std::vector<Gradients> gradients = {{dw1->typed_data(), db1->typed_data(), dw2->typed_data(), db2->typed_data(),
                                       dw3->typed_data(), db3->typed_data()}};
  std::vector<std::vector<float>> partial(shares - 1, std::vector<float>(k * c + c + c * d + d + d * v + v));
  for (auto& buffer : partial) {
    Gradients& own = gradients.emplace_back();
    float* at = buffer.data();
    for (int part = 0; part < kParts; ++part) own[part] = at, at += sizes[part];
  }
  for (int part = 0; part < kParts; ++part) std::fill(gradients[0][part], gradients[0][part] + sizes[part], 0.0f);

  kernels::ForShares(rows, shares, kChunkRows, [&](int64_t share, int64_t r0, int64_t r1) {
    const Gradients& own = gradients[share];
    std::vector<float> dlogits(kChunkRows * v), dy2(kChunkRows * d), dy1(kChunkRows * c);
    for (int64_t r = r0; r < r1; r += kChunkRows) {
      const int64_t n = std::min(kChunkRows, r1 - r);
      const float *x_r = x.typed_data() + r * k, *y1 = h1.typed_data() + r * c, *y2 = h2.typed_data() + r * d;
      // d log p / d logits = onehot(label) - softmax, times the row's cotangent.
      for (int64_t i = 0; i < n; ++i) {
        const float g = cotangent.typed_data()[r + i];
        const float* p = probs.typed_data() + (r + i) * v;
        for (int64_t j = 0; j < v; j += kLanes) Store(dlogits.data() + i * v + j, Load(p + j) * -g);
        const int32_t label = labels.typed_data()[r + i];
        if (label >= 0 && label < v) dlogits[i * v + label] += g;
      }
      MaskAndSum(dlogits.data(), nullptr, own[kB3], n, v);
      ProductOfWidth(y2, 1, d, dlogits.data(), v, own[kW3], v, d, n, v, true);
      ProductOfWidth(dlogits.data(), v, 1, w3t.typed_data(), d, dy2.data(), d, n, v, d, false);
      MaskAndSum(dy2.data(), y2, own[kB2], n, d);
      ProductOfWidth(y1, 1, c, dy2.data(), d, own[kW2], d, c, n, d, true);
      ProductOfWidth(dy2.data(), d, 1, w2t.typed_data(), c, dy1.data(), c, n, d, c, false);
      MaskAndSum(dy1.data(), y1, own[kB1], n, c);
      ProductOfWidth(x_r, 1, k, dy1.data(), c, own[kW1], c, k, n, c, true);
      ProductOfWidth(dy1.data(), c, 1, w1t.typed_data(), k, dx->typed_data() + r * k, k, n, c, k, false);
    }
  });
  for (int64_t share = 1; share < shares; ++share) {
    for (int part = 0; part < kParts; ++part) {
      for (int64_t e = 0; e < sizes[part]; ++e) gradients[0][part][e] += gradients[share][part][e];
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ReluMlpLogProbForward, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<Matrix>().Arg<Matrix>().Arg<Vector>().Arg<Matrix>().Arg<Vector>()
                                  .Arg<Matrix>().Arg<Vector>().Arg<Labels>()
                                  .Ret<Vector>().Ret<Matrix>().Ret<Matrix>().Ret<Matrix>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(ReluMlpLogProbBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Arg<Matrix>().Arg<Matrix>().Arg<Matrix>().Arg<Matrix>()
                                  .Arg<Matrix>().Arg<Matrix>().Arg<Matrix>().Arg<Labels>().Arg<Vector>()
                                  .Ret<Matrix>().Ret<Matrix>().Ret<Vector>().Ret<Matrix>().Ret<Vector>()
                                  .Ret<Matrix>().Ret<Vector>());
