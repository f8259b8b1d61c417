// One residual layer of a WaveNet, forward and backward, fused: its dilated causal convolution, gated
// activation and residual 1x1 convolution. Per example and output position i < T' = T - (taps - 1) d:
//
//   pre(i) = bias(i) + sum over taps j of x(i + j d) K_j          K_j [R, 2G], rows j R ... (j + 1) R of K
//   z(i)   = tanh(pre(i)[:G]) * sigmoid(pre(i)[G:])                 [G]
//   out(i) = x(i + (taps - 1) d) + z(i) Wr + br                     [R]
//
// XLA runs a layer as a copy of the taps side by side, a product, elementwise fusions, a second product and
// a slice, each through memory, and its backward pass as more of the same: with 20 layers, most of the
// training step outside the head. Here each core takes a share of the positions, a chunk of kChunkRows at
// a time, and runs the whole layer on a chunk while it is in cache. The forward pass keeps tanh(pre[:G])
// and sigmoid(pre[G:]) for the backward one (recomputing them from x made it a quarter slower, timed
// alone). The backward pass sums each core's weight gradients in its own buffers, and adds each chunk's
// d pre K_j^T straight into d x, whose rows x(p) feed positions p - j d: a core writes the rows at its own
// positions, and spills what reaches past them, to be added after.
//
// Row-major float32; x [B, T, R], K [taps R, 2G], bias [B, 1 or T', 2G], Wr [G, R]; R and G multiples of 16.
#include <algorithm>
#include <array>
#include <cstdint>
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
using kernels::Sigmoid;
using kernels::Store;
using kernels::Tanh;
using kernels::Vec;
using Tensor = ffi::Buffer<ffi::F32, 3>;
using Matrix = ffi::Buffer<ffi::F32, 2>;
using Vector = ffi::Buffer<ffi::F32, 1>;

constexpr int64_t kChunkRows = 256;  // positions a core runs together (64 to 512 timed alike)

// The layer's sizes, read off its buffers.
struct Shape {
  int64_t batch, length, residual, gate, taps, dilation, outputs, bias_rows;

  Shape(const Tensor& x, int64_t width, int64_t taps_, int64_t dilation_, int64_t bias_rows_)
      : batch(x.dimensions()[0]), length(x.dimensions()[1]), residual(x.dimensions()[2]), gate(width / 2),
        taps(taps_), dilation(dilation_), outputs(length - (taps_ - 1) * dilation_), bias_rows(bias_rows_) {}

  bool Valid() const { return residual % kLanes == 0 && gate % kLanes == 0 && outputs > 0; }

  // How many cores share the examples' output positions, laid end to end.
  int64_t Shares() const { return kernels::NumShares(batch * outputs, 4 * kChunkRows); }

  // Calls chunk(example, first position, positions) for chunks of every example's output positions, shared
  // among the cores.
  template <class Chunk>
  void ForChunks(Chunk chunk) const {
    kernels::ForShares(batch * outputs, Shares(), kChunkRows, [&](int64_t, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1;) {
        const int64_t example = r / outputs, i = r % outputs, n = std::min({kChunkRows, r1 - r, outputs - i});
        chunk(example, i, n);
        r += n;
      }
    });
  }
};

// pre [n, 2G] = bias + sum_j x(i + j d) K_j for positions i ... i + n - 1 of `example`.
void PreActivations(const Shape& s, const float* x, const float* kernel, const float* bias, int64_t example,
                    int64_t i, int64_t n, float* pre) {
  const int64_t width = 2 * s.gate;
  for (int64_t j = 0; j < s.taps; ++j) {
    const float* rows = x + (example * s.length + i + j * s.dilation) * s.residual;
    ProductOfWidth(rows, s.residual, 1, kernel + j * s.residual * width, width, pre, width, n, s.residual, width,
                   j > 0);
  }
  for (int64_t r = 0; r < n; ++r) {
    const float* b = bias + (example * s.bias_rows + (s.bias_rows == 1 ? 0 : i + r)) * width;
    for (int64_t c = 0; c < width; c += kLanes) Store(pre + r * width + c, Load(pre + r * width + c) + Load(b + c));
  }
}

ffi::Error Forward(Tensor x, Matrix kernel, Tensor bias, Matrix residual_kernel, Vector residual_bias,
                   int64_t dilation, ffi::Result<Tensor> z, ffi::Result<Tensor> out, ffi::Result<Tensor> activations) {
  const int64_t channels = x.dimensions()[2];
  const Shape s(x, kernel.dimensions()[1], kernel.dimensions()[0] / channels, dilation, bias.dimensions()[1]);
  if (!s.Valid()) return ffi::Error::InvalidArgument("gated_residual: widths must be multiples of 16");
  const int64_t g = s.gate, width = 2 * g, lag = (s.taps - 1) * s.dilation;
  s.ForChunks([&](int64_t example, int64_t i, int64_t n) {
    float* pre = activations->typed_data() + (example * s.outputs + i) * width;
    PreActivations(s, x.typed_data(), kernel.typed_data(), bias.typed_data(), example, i, n, pre);
    float* z_rows = z->typed_data() + (example * s.outputs + i) * g;
    float* out_rows = out->typed_data() + (example * s.outputs + i) * channels;
    const float* current = x.typed_data() + (example * s.length + i + lag) * channels;
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < g; c += kLanes) {
        const Vec t = Tanh(Load(pre + r * width + c)), sg = Sigmoid(Load(pre + r * width + g + c));
        Store(pre + r * width + c, t);
        Store(pre + r * width + g + c, sg);
        Store(z_rows + r * g + c, t * sg);
      }
      for (int64_t c = 0; c < channels; c += kLanes) {
        Store(out_rows + r * channels + c, Load(current + r * channels + c) + Load(residual_bias.typed_data() + c));
      }
    }
    ProductOfWidth(z_rows, g, 1, residual_kernel.typed_data(), channels, out_rows, channels, n, g, channels, true);
  });
  return ffi::Error::Success();
}

// One core's gradients of the weights, each summed over its positions: K [taps R, 2G], Wr [G, R], br [R], and
// the bias [B, 2G] where it is one per example.
enum { kKernel, kResidualKernel, kResidualBias, kBias, kParts };
using Gradients = std::array<float*, kParts>;

ffi::Error Backward(Tensor x, Tensor activations, Matrix kernel_t, Matrix residual_kernel_t, Tensor z_cotangent,
                    Tensor out_cotangent, int64_t dilation, ffi::Result<Tensor> dx, ffi::Result<Matrix> dkernel,
                    ffi::Result<Tensor> dbias, ffi::Result<Matrix> dresidual_kernel,
                    ffi::Result<Vector> dresidual_bias) {
  const int64_t channels = x.dimensions()[2], width = activations.dimensions()[2];
  const Shape s(x, width, kernel_t.dimensions()[0] / width, dilation, dbias->dimensions()[1]);
  if (!s.Valid()) return ffi::Error::InvalidArgument("gated_residual: widths must be multiples of 16");
  const int64_t g = s.gate, lag = (s.taps - 1) * s.dilation, outputs = s.outputs, length = s.length;
  const bool per_position = s.bias_rows == outputs;
  const int64_t shares = s.Shares();
  // Share 0 sums into the outputs, the others into their own buffers, added at the end.
  const int64_t sizes[kParts] = {s.taps * channels * width, g * channels, channels, per_position ? 0 : s.batch * width};
  std::vector<Gradients> gradients = {{dkernel->typed_data(), dresidual_kernel->typed_data(),
                                       dresidual_bias->typed_data(), dbias->typed_data()}};
  std::vector<std::vector<float>> partial(shares - 1, std::vector<float>(sizes[0] + sizes[1] + sizes[2] + sizes[3]));
  for (auto& buffer : partial) {
    Gradients& own = gradients.emplace_back();
    float* at = buffer.data();
    for (int part = 0; part < kParts; ++part) own[part] = at, at += sizes[part];
  }
  for (int part = 0; part < kParts; ++part) std::fill(gradients[0][part], gradients[0][part] + sizes[part], 0.0f);
  // d pre and z of a chunk; d x(p) gets d pre(p - j d) K_j^T from each tap j and d out(p - lag). A share
  // writes the rows of d x at its own positions and, where it holds an example's last position, the lag rows
  // after it. Where it ends inside an example, what reaches the next lag rows goes to its spill, added after.
  std::vector<std::vector<float>> scratch(shares, std::vector<float>(kChunkRows * (width + g)));
  std::vector<std::vector<float>> spill(shares, std::vector<float>(lag * channels));
  std::vector<int64_t> spill_example(shares, -1), spill_start(shares, 0);
  const float* d_out_all = out_cotangent.typed_data();
  float* dx_all = dx->typed_data();

  kernels::ForShares(s.batch * outputs, shares, kChunkRows, [&](int64_t share, int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    const Gradients& own = gradients[share];
    float *d_pre = scratch[share].data(), *z = d_pre + kChunkRows * width;
    const int64_t last = (r1 - 1) / outputs, last_end = (r1 - 1) % outputs + 1;
    if (last_end < outputs) spill_example[share] = last, spill_start[share] = last_end;
    // The end of the rows of d x this share writes in example b, which it holds from position p0 on.
    const auto owned_end = [&](int64_t b) { return b == last && last_end < outputs ? last_end : length; };
    for (int64_t r = r0; r < r1;) {
      const int64_t b = r / outputs, p0 = r % outputs, end = owned_end(b);
      for (int64_t p = p0; p < end; ++p) {
        for (int64_t c = 0; c < channels; c += kLanes) {
          Store(dx_all + (b * length + p) * channels + c,
                p >= lag ? Load(d_out_all + (b * outputs + p - lag) * channels + c) : Vec{});
        }
      }
      r += std::min(outputs, p0 + (r1 - r)) - p0;
    }
    for (int64_t r = r0; r < r1;) {
      const int64_t b = r / outputs, i = r % outputs, n = std::min({kChunkRows, r1 - r, outputs - i});
      const float* saved = activations.typed_data() + r * width;
      const float* d_out = d_out_all + r * channels;
      // d z = its own cotangent + d out Wr^T, into d pre's filter half for now.
      for (int64_t k = 0; k < n; ++k) {
        for (int64_t c = 0; c < g; c += kLanes) {
          Store(d_pre + k * width + c, Load(z_cotangent.typed_data() + (r + k) * g + c));
        }
      }
      ProductOfWidth(d_out, channels, 1, residual_kernel_t.typed_data(), g, d_pre, width, n, channels, g, true);
      for (int64_t k = 0; k < n; ++k) {
        for (int64_t c = 0; c < g; c += kLanes) {
          const Vec t = Load(saved + k * width + c), sg = Load(saved + k * width + g + c);
          const Vec dz = Load(d_pre + k * width + c);
          Store(z + k * g + c, t * sg);
          Store(d_pre + k * width + c, dz * sg * (1.0f - t * t));
          Store(d_pre + k * width + g + c, dz * t * sg * (1.0f - sg));
        }
        for (int64_t c = 0; c < channels; c += kLanes) {
          Store(own[kResidualBias] + c, Load(own[kResidualBias] + c) + Load(d_out + k * channels + c));
        }
        float* bias_row = per_position ? dbias->typed_data() + (r + k) * width : own[kBias] + b * width;
        for (int64_t c = 0; c < width; c += kLanes) {
          const Vec v = Load(d_pre + k * width + c);
          Store(bias_row + c, per_position ? v : Load(bias_row + c) + v);
        }
      }
      ProductOfWidth(z, 1, g, d_out, channels, own[kResidualKernel], channels, g, n, channels, true);  // z^T d out
      const int64_t end = owned_end(b);
      for (int64_t j = 0; j < s.taps; ++j) {
        const float* rows = x.typed_data() + (b * length + i + j * s.dilation) * channels;
        ProductOfWidth(rows, 1, channels, d_pre, width, own[kKernel] + j * channels * width, width, channels, n, width,
                       true);  // x(i + j d)^T d pre
        const float* k_t = kernel_t.typed_data() + j * width * channels;
        const int64_t lo = i + j * s.dilation, mid = std::min(lo + n, end), hi = lo + n;  // d x rows [lo, hi)
        if (mid > lo) {
          ProductOfWidth(d_pre, width, 1, k_t, channels, dx_all + (b * length + lo) * channels, channels, mid - lo,
                         width, channels, true);
        }
        const int64_t first = std::max(lo, end);
        if (hi > first) {
          ProductOfWidth(d_pre + (first - lo) * width, width, 1, k_t, channels,
                         spill[share].data() + (first - end) * channels, channels, hi - first, width, channels, true);
        }
      }
      r += n;
    }
  });
  for (int64_t share = 1; share < shares; ++share) {
    for (int part = 0; part < kParts; ++part) {
      for (int64_t e = 0; e < sizes[part]; ++e) gradients[0][part][e] += gradients[share][part][e];
    }
  }
  for (int64_t share = 0; share < shares; ++share) {
    if (spill_example[share] < 0) continue;
    float* rows = dx_all + (spill_example[share] * length + spill_start[share]) * channels;
    const float* spilled = spill[share].data();
    for (int64_t e = 0; e < lag * channels; ++e) rows[e] += spilled[e];
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(GatedResidualForward, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<Tensor>().Arg<Matrix>().Arg<Tensor>().Arg<Matrix>().Arg<Vector>()
                                  .Attr<int64_t>("dilation")
                                  .Ret<Tensor>().Ret<Tensor>().Ret<Tensor>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(GatedResidualBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Arg<Tensor>().Arg<Tensor>().Arg<Matrix>().Arg<Matrix>().Arg<Tensor>()
                                  .Arg<Tensor>()
                                  .Attr<int64_t>("dilation")
                                  .Ret<Tensor>().Ret<Matrix>().Ret<Tensor>().Ret<Matrix>().Ret<Vector>());
