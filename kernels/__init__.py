"""Small C++ kernels, XLA custom calls on CPU, for the products XLA's CPU backend runs worst.

- `dense(x, w)` is `x @ w` for x [..., K] and w [K, N]. Its gradient with
  respect to w, x^T g summed over every leading position, is a product with
  a long contraction (all positions of a batch) and a narrow output, the shape
  XLA's CPU dot handles worst: about 50 GFLOP/s on a 2-core AVX-512 Xeon, a
  third of its rate on the same product untransposed. The WaveNet's 20 dilated
  convolutions take such a gradient each, [64, 64] over 16,000 rows at the
  standard size. `transposed_matmul.cc` computes it at about 150-170 GFLOP/s.
- `relu_mlp_log_prob(x, layers, labels)` is the log-likelihood of integer
  labels under a softmax over `relu_mlp(x, layers)`: the WaveNet's output head
  and its loss. XLA runs it, forward and backward, as separate products whose
  [R, 256] intermediates go through memory; `relu_mlp_log_prob.cc` runs every
  product of a chunk of rows while they are in cache.
- `gated_residual(x, kernel, bias, residual_kernel, residual_bias, dilation)`
  is one WaveNet residual layer: dilated causal convolution, gated
  activation, residual 1x1. XLA runs each layer, forward and backward, as a
  copy of the taps, products and elementwise fusions through memory;
  `gated_residual.cc` runs the whole layer on a chunk of positions in cache.

`benchmarks/bench_wavenet_train.py --without-kernels` measures what the kernels
save in the whole training step.

Importing this package also keeps the memory XLA frees for the next step
(`retain_freed_memory`): glibc's defaults hand a training step's large
temporaries back to the OS, and the next step takes them again, page by page.

The library is compiled with the machine's g++ (`python -m kernels`, which
install.sh runs; otherwise on first use) beside the sources, named by a hash
of them and the flags, so an edit rebuilds it. Where it cannot be built or
loaded, or off CPU, or for shapes a kernel does not take, the computation is
XLA's own: the same numbers to float32 rounding.
"""

import contextlib
import ctypes
import functools
import glob
import hashlib
import os
import subprocess
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

_FOLDER = os.path.dirname(__file__)
SOURCES = tuple(os.path.join(_FOLDER, name)
                for name in ("transposed_matmul.cc", "relu_mlp_log_prob.cc", "gated_residual.cc"))
_HEADERS = tuple(os.path.join(_FOLDER, name) for name in ("gemm.h", "threads.h", "vector_math.h"))
_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
_TARGETS = {  # XLA custom-call name: the library's handler symbol
    "electric_beats_transposed_matmul": "TransposedMatmulHandler",
    "electric_beats_relu_mlp_log_prob_forward": "ReluMlpLogProbForward",
    "electric_beats_relu_mlp_log_prob_backward": "ReluMlpLogProbBackward",
    "electric_beats_gated_residual_forward": "GatedResidualForward",
    "electric_beats_gated_residual_backward": "GatedResidualBackward",
}
_TRANSPOSED_MATMUL, _HEAD_FORWARD, _HEAD_BACKWARD, _LAYER_FORWARD, _LAYER_BACKWARD = _TARGETS
_WIDTHS = (16, 32, 64)  # output widths N the transposed product takes


def library_path():
  """Where the library for the current sources and flags lives."""
  digest = hashlib.sha256(" ".join(_FLAGS).encode())
  for path in SOURCES + _HEADERS:
    with open(path, "rb") as file:
      digest.update(file.read())
  return os.path.join(_FOLDER, f"_kernels_{digest.hexdigest()[:12]}.so")


def build():
  """Compiles the library unless it exists; returns its path. Raises RuntimeError if g++ fails."""
  path = library_path()
  if os.path.exists(path):
    return path
  handle, partial = tempfile.mkstemp(suffix=".so", dir=_FOLDER)  # Atomic: concurrent builds race safely.
  os.close(handle)
  command = ["g++", *_FLAGS, f"-I{jax.ffi.include_dir()}", *SOURCES, "-o", partial, "-lpthread"]
  try:
    done = subprocess.run(command, capture_output=True, text=True)
  except OSError as error:
    os.remove(partial)
    raise RuntimeError(f"cannot run g++ ({error})") from None
  if done.returncode:
    os.remove(partial)
    last_line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
    raise RuntimeError(f"g++ failed: {last_line}")
  os.replace(partial, path)
  for stale in set(glob.glob(os.path.join(_FOLDER, "_kernels_*.so"))) - {path}:
    with contextlib.suppress(OSError):  # Built from an earlier source; another process may remove it first.
      os.remove(stale)
  return path


@functools.cache
def available():
  """Whether the kernels are registered with XLA for CPU (built and loaded on the first call)."""
  try:
    library = ctypes.cdll.LoadLibrary(build())
  except (RuntimeError, OSError) as error:
    warnings.warn(f"kernels: the C++ kernels are unavailable ({error}); using XLA's own products")
    return False
  for target, symbol in _TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
  return True


_MALLOC_OPTIONS = ((-8, 1), (-4, 0), (-1, 2 ** 31 - 1))  # glibc mallopt: M_ARENA_MAX 1, M_MMAP_MAX 0, M_TRIM_THRESHOLD


def retain_freed_memory():
  """Makes glibc keep freed memory for reuse: returns whether it could (not on another libc, or when disabled).

  XLA's CPU runtime allocates a step's temporaries anew at each step and frees
  them after it. glibc serves blocks that large with mmap, or from per-thread
  arenas that it trims, so each step faults every page of them in again: 86,000
  page faults (340 MB) per training step of the standard WaveNet at
  1 x 16,000, a tenth of its time or more (benchmarks/bench_wavenet_train.py
  prints the faults per step; compare a run with ELECTRIC_BEATS_SYSTEM_MALLOC=1). One arena that grows by brk and is never trimmed
  reuses the pages instead; the process keeps its peak memory. Threads made
  before this call keep their own arenas, so it runs when this package is first
  imported. ELECTRIC_BEATS_SYSTEM_MALLOC=1 keeps glibc's defaults.
  """
  if os.environ.get("ELECTRIC_BEATS_SYSTEM_MALLOC") == "1":
    return False
  mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
  return bool(mallopt) and all(mallopt(option, value) == 1 for option, value in _MALLOC_OPTIONS)


retain_freed_memory()
_disabled = False


@contextlib.contextmanager
def disabled():
  """Within this block, functions traced use XLA's own products instead of the kernels (to compare the two)."""
  global _disabled
  before, _disabled = _disabled, True
  try:
    yield
  finally:
    _disabled = before


def _kernels_take(*arrays):
  """Whether a kernel may run on these float32 arrays: on CPU, built, and not `disabled()`."""
  return (not _disabled and jax.default_backend() == "cpu" and all(array.dtype == jnp.float32 for array in arrays)
          and available())


def transposed_matmul(a, b):
  """a^T b for a [R, M] and b [R, N] float32: the kernel on CPU where it takes N, else XLA's dot. -> [M, N]."""
  if b.shape[-1] not in _WIDTHS or not _kernels_take(a, b):
    return a.T @ b
  kernel = jax.ffi.ffi_call(_TRANSPOSED_MATMUL, jax.ShapeDtypeStruct((a.shape[1], b.shape[1]), jnp.float32),
                            vmap_method="sequential")
  return kernel(a, b)


@jax.custom_vjp
def dense(x, w):
  """x [..., K] @ w [K, N] -> [..., N], its weight gradient by `transposed_matmul`."""
  return x @ w


def _dense_forward(x, w):
  return x @ w, (x, w)


def _dense_backward(residuals, g):
  x, w = residuals
  return g @ w.T, transposed_matmul(x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1]))


dense.defvjp(_dense_forward, _dense_backward)


def relu_mlp(x, layers):
  """x [..., K] through dense layers [(w [K, C], b [C]), ...] with a ReLU after all but the last -> [..., N]."""
  for index, (kernel, bias) in enumerate(layers):
    if index:
      x = jax.nn.relu(x)
    x = x @ kernel + bias
  return x


def relu_mlp_log_prob(x, layers, labels):
  """log softmax(relu_mlp(x, layers))[labels]: x [..., K], three layers, labels [...] int -> [...] float32.

  The fused kernel on CPU where every width is a multiple of 16, else the
  same through XLA (`relu_mlp` and a log-softmax).
  """
  widths = [x.shape[-1]] + [kernel.shape[-1] for kernel, _ in layers]
  if (len(layers) != 3 or any(width % 16 for width in widths)
      or not _kernels_take(x, *[array for layer in layers for array in layer])):
    logits = relu_mlp(x, layers)
    return jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  (w1, b1), (w2, b2), (w3, b3) = layers
  flat = _fused_log_prob(x.reshape(-1, x.shape[-1]), w1, b1, w2, b2, w3, b3, labels.reshape(-1).astype(jnp.int32))
  return flat.reshape(labels.shape)


def _head_forward_call(x, w1, b1, w2, b2, w3, b3, labels):
  """The forward kernel: -> (log_prob [R], relu'd hidden activations [R, C] and [R, D], softmax [R, V])."""
  rows = x.shape[0]
  shapes = [(rows,), (rows, w1.shape[1]), (rows, w2.shape[1]), (rows, w3.shape[1])]
  call = jax.ffi.ffi_call(_HEAD_FORWARD, [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes],
                          vmap_method="sequential")
  return call(x, w1, b1, w2, b2, w3, b3, labels)


@jax.custom_vjp
def _fused_log_prob(x, w1, b1, w2, b2, w3, b3, labels):
  return _head_forward_call(x, w1, b1, w2, b2, w3, b3, labels)[0]


def _fused_forward(x, w1, b1, w2, b2, w3, b3, labels):
  log_prob, h1, h2, probs = _head_forward_call(x, w1, b1, w2, b2, w3, b3, labels)
  return log_prob, (x, w1, w2, w3, h1, h2, probs, labels)


def _fused_backward(residuals, cotangent):
  x, w1, w2, w3, h1, h2, probs, labels = residuals
  shapes = [x.shape, w1.shape, w1.shape[1:], w2.shape, w2.shape[1:], w3.shape, w3.shape[1:]]
  call = jax.ffi.ffi_call(_HEAD_BACKWARD, [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes],
                          vmap_method="sequential")
  dx, dw1, db1, dw2, db2, dw3, db3 = call(x, w1.T, w2.T, w3.T, h1, h2, probs, labels, cotangent)
  return dx, dw1, db1, dw2, db2, dw3, db3, None


_fused_log_prob.defvjp(_fused_forward, _fused_backward)


def gated(pre):
  """The gated activation tanh(filter) * sigmoid(gate) of pre-activations [..., 2G] -> [..., G]."""
  gate = pre.shape[-1] // 2
  return jnp.tanh(pre[..., :gate]) * jax.nn.sigmoid(pre[..., gate:])


def gated_residual(x, kernel, bias, residual_kernel, residual_bias, dilation):
  """One WaveNet residual layer: its dilated causal convolution, gated activation and residual 1x1.

  Args:
    x: [B, T, R] the residual stream.
    kernel: [taps * R, 2G]; rows j R ... (j + 1) R multiply x(i + j * dilation).
    bias: added to the pre-activations, broadcastable to [B, 1, 2G] or to [B, T', 2G],
      T' = T - (taps - 1) * dilation.
    residual_kernel: [G, R]; residual_bias: [R].
    dilation: int.

  Returns:
    (z [B, T', G] the gated activations, out [B, T', R] the stream after
    the layer, x(i + (taps - 1) * dilation) + z(i) residual_kernel + residual_bias).

  The fused kernel (gated_residual.cc) on CPU where R and G are multiples of
  16, else the same through XLA.
  """
  channels, gate = x.shape[-1], residual_kernel.shape[0]
  rows_and_width = jnp.shape(bias)[-2:] if jnp.ndim(bias) > 1 else (1, 2 * gate)
  bias = jnp.broadcast_to(bias, (x.shape[0], *rows_and_width))
  span = (kernel.shape[0] // channels - 1) * dilation
  if (channels % 16 or gate % 16 or x.shape[1] <= span  # no output positions: XLA's empty arrays
      or not _kernels_take(x, kernel, bias, residual_kernel, residual_bias)):
    return _gated_residual_xla(x, kernel, bias, residual_kernel, residual_bias, dilation)
  return _fused_layer(x, kernel, bias, residual_kernel, residual_bias, dilation)


def dilated_conv(x, kernel, dilation):
  """Dilated convolution without padding, as one product over the taps side by side.

  x [B, T, C_in]; kernel [taps * C_in, C_out], rows j C_in ... (j + 1) C_in multiply x(i + j * dilation)
  -> [B, T - (taps - 1) * dilation, C_out].
  """
  taps = kernel.shape[0] // x.shape[-1]
  time_out = x.shape[1] - (taps - 1) * dilation
  stacked = jnp.concatenate([x[:, j * dilation: j * dilation + time_out] for j in range(taps)], axis=-1)
  return dense(stacked, kernel)


def _gated_residual_xla(x, kernel, bias, residual_kernel, residual_bias, dilation):
  z = gated(dilated_conv(x, kernel, dilation) + bias)
  return z, x[:, x.shape[1] - z.shape[1]:] + dense(z, residual_kernel) + residual_bias


def _layer_forward_call(x, kernel, bias, residual_kernel, residual_bias, dilation):
  """The forward kernel: -> (z, out, [B, T', 2G] tanh of the filters and sigmoid of the gates, for the backward)."""
  time_out = x.shape[1] - (kernel.shape[0] // x.shape[-1] - 1) * dilation
  shapes = [(x.shape[0], time_out, residual_kernel.shape[0]), (x.shape[0], time_out, x.shape[-1]),
            (x.shape[0], time_out, kernel.shape[1])]
  call = jax.ffi.ffi_call(_LAYER_FORWARD, [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes],
                          vmap_method="sequential")
  return call(x, kernel, bias, residual_kernel, residual_bias, dilation=np.int64(dilation))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _fused_layer(x, kernel, bias, residual_kernel, residual_bias, dilation):
  return tuple(_layer_forward_call(x, kernel, bias, residual_kernel, residual_bias, dilation)[:2])


def _fused_layer_forward(x, kernel, bias, residual_kernel, residual_bias, dilation):
  z, out, activations = _layer_forward_call(x, kernel, bias, residual_kernel, residual_bias, dilation)
  return (z, out), (x, kernel, bias, residual_kernel, activations)


def _fused_layer_backward(dilation, residuals, cotangents):
  x, kernel, bias, residual_kernel, activations = residuals
  z_cotangent, out_cotangent = cotangents
  channels, width = x.shape[-1], kernel.shape[1]
  taps = kernel.shape[0] // channels
  kernel_t = kernel.reshape(taps, channels, width).transpose(0, 2, 1).reshape(taps * width, channels)
  shapes = [x.shape, kernel.shape, bias.shape, residual_kernel.shape, (channels,)]
  call = jax.ffi.ffi_call(_LAYER_BACKWARD, [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes],
                          vmap_method="sequential")
  dx, dkernel, dbias, dresidual_kernel, dresidual_bias = call(
      x, activations, kernel_t, residual_kernel.T, z_cotangent, out_cotangent, dilation=np.int64(dilation))
  return dx, dkernel, dbias, dresidual_kernel, dresidual_bias


_fused_layer.defvjp(_fused_layer_forward, _fused_layer_backward)
