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
// alone), which sums each core's weight gradients in its own buffers and writes d pre, from which a second
// pass forms d x: x(p) feeds positions p - j d.
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

  // Calls chunk(example, first position, positions) for chunks of [0, positions) of every example, the
  // examples' positions laid end to end and shared among the cores; chunk also gets its core's share.
  template <class Chunk>
  void ForChunks(int64_t positions, Chunk chunk, int64_t shares) const {
    kernels::ForShares(batch * positions, shares, kChunkRows, [&](int64_t share, int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1;) {
        const int64_t example = r / positions, i = r % positions;
        const int64_t n = std::min({kChunkRows, r1 - r, positions - i});
        chunk(share, example, i, n);
        r += n;
      }
    });
  }

  int64_t Shares(int64_t positions) const { return kernels::NumShares(batch * positions, 4 * kChunkRows); }
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
  s.ForChunks(s.outputs, [&](int64_t, int64_t example, int64_t i, int64_t n) {
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
  }, s.Shares(s.outputs));
  return ffi::Error::Success();
}

// One core's weight gradients, each summed over its positions: K [taps R, 2G], Wr [G, R], br [R].
enum { kKernel, kResidualKernel, kResidualBias, kParts };
using Gradients = std::array<float*, kParts>;

ffi::Error Backward(Tensor x, Tensor activations, Matrix kernel_t, Matrix residual_kernel_t, Tensor z_cotangent,
                    Tensor out_cotangent, int64_t dilation, ffi::Result<Tensor> dx, ffi::Result<Matrix> dkernel,
                    ffi::Result<Tensor> dpre, ffi::Result<Matrix> dresidual_kernel,
                    ffi::Result<Vector> dresidual_bias) {
  const int64_t channels = x.dimensions()[2], width = activations.dimensions()[2];
  const Shape s(x, width, kernel_t.dimensions()[0] / width, dilation, 1);
  if (!s.Valid()) return ffi::Error::InvalidArgument("gated_residual: widths must be multiples of 16");
  const int64_t g = s.gate, lag = (s.taps - 1) * s.dilation;
  const int64_t shares = s.Shares(s.outputs);
  // Share 0 sums into the outputs, the others into their own buffers, added at the end.
  const int64_t sizes[kParts] = {s.taps * channels * width, g * channels, channels};
  std::vector<Gradients> gradients = {{dkernel->typed_data(), dresidual_kernel->typed_data(),
                                       dresidual_bias->typed_data()}};
  std::vector<std::vector<float>> partial(shares - 1, std::vector<float>(sizes[0] + sizes[1] + sizes[2]));
  for (auto& buffer : partial) {
    Gradients& own = gradients.emplace_back();
    float* at = buffer.data();
    for (int part = 0; part < kParts; ++part) own[part] = at, at += sizes[part];
  }
  for (int part = 0; part < kParts; ++part) std::fill(gradients[0][part], gradients[0][part] + sizes[part], 0.0f);
  std::vector<std::vector<float>> scratch(shares, std::vector<float>(kChunkRows * g));  // z

  s.ForChunks(s.outputs, [&](int64_t share, int64_t example, int64_t i, int64_t n) {
    const Gradients& own = gradients[share];
    float* z = scratch[share].data();
    const int64_t row0 = example * s.outputs + i;
    const float* saved = activations.typed_data() + row0 * width;
    const float* d_out = out_cotangent.typed_data() + row0 * channels;
    float* d_pre = dpre->typed_data() + row0 * width;
    // d z = its own cotangent + d out Wr^T, into d pre's filter half for now.
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < g; c += kLanes) {
        Store(d_pre + r * width + c, Load(z_cotangent.typed_data() + (row0 + r) * g + c));
      }
    }
    ProductOfWidth(d_out, channels, 1, residual_kernel_t.typed_data(), g, d_pre, width, n, channels, g, true);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < g; c += kLanes) {
        const Vec t = Load(saved + r * width + c), sg = Load(saved + r * width + g + c);
        const Vec dz = Load(d_pre + r * width + c);
        Store(z + r * g + c, t * sg);
        Store(d_pre + r * width + c, dz * sg * (1.0f - t * t));
        Store(d_pre + r * width + g + c, dz * t * sg * (1.0f - sg));
      }
      for (int64_t c = 0; c < channels; c += kLanes) {
        Store(own[kResidualBias] + c, Load(own[kResidualBias] + c) + Load(d_out + r * channels + c));
      }
    }
    ProductOfWidth(z, 1, g, d_out, channels, own[kResidualKernel], channels, g, n, channels, true);  // z^T d out
    for (int64_t j = 0; j < s.taps; ++j) {  // x(i + j d)^T d pre
      const float* rows = x.typed_data() + (example * s.length + i + j * s.dilation) * channels;
      ProductOfWidth(rows, 1, channels, d_pre, width, own[kKernel] + j * channels * width, width, channels, n, width,
                     true);
    }
  }, shares);
  for (int64_t share = 1; share < shares; ++share) {
    for (int part = 0; part < kParts; ++part) {
      for (int64_t e = 0; e < sizes[part]; ++e) gradients[0][part][e] += gradients[share][part][e];
    }
  }

  // d x(p) = d out(p - lag) where p >= lag, plus d pre(p - j d) K_j^T for each tap j where 0 <= p - j d < T'.
  s.ForChunks(s.length, [&](int64_t, int64_t example, int64_t p, int64_t n) {
    float* dx_rows = dx->typed_data() + (example * s.length + p) * channels;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t q = p + r - lag;
      for (int64_t c = 0; c < channels; c += kLanes) {
        Store(dx_rows + r * channels + c,
              q >= 0 ? Load(out_cotangent.typed_data() + (example * s.outputs + q) * channels + c) : Vec{});
      }
    }
    for (int64_t j = 0; j < s.taps; ++j) {
      const int64_t lo = std::max(p, j * s.dilation), hi = std::min(p + n, j * s.dilation + s.outputs);
      if (lo >= hi) continue;
      ProductOfWidth(dpre->typed_data() + (example * s.outputs + lo - j * s.dilation) * width, width, 1,
                     kernel_t.typed_data() + j * width * channels, channels, dx_rows + (lo - p) * channels, channels,
                     hi - lo, width, channels, true);
    }
  }, s.Shares(s.length));
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
