"""A position-wise product whose weight gradient runs in a small C++ kernel on CPU.

`dense(x, w)` is `x @ w` for x [..., K] and w [K, N]. Its gradient with
respect to w, x^T g summed over every leading position, is a product with a
long contraction (all positions of a batch) and a narrow output, the shape
XLA's CPU dot handles worst: about 50 GFLOP/s on a 2-core AVX-512 Xeon, a third
of its rate on the same product untransposed. The WaveNet's 20 dilated
convolutions take such a gradient each, [64, 64] over 16,000 rows at the
standard size. `transposed_matmul.cc` computes it at about 150-170 GFLOP/s there;
`benchmarks/bench_wavenet_train.py --xla-gradients` measures what that
saves in the whole training step.

The library is compiled with the machine's g++ (`python -m kernels`, which
install.sh runs; otherwise on first use) beside this file, named by a hash
of its source and flags, so an edit rebuilds it. Where it cannot be built or
loaded, or off CPU, or for an output width it does not take, the gradient is
XLA's own dot: the same numbers to float32 rounding.
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

SOURCE = os.path.join(os.path.dirname(__file__), "transposed_matmul.cc")
_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
_TARGET = "electric_beats_transposed_matmul"
_WIDTHS = (16, 32, 64)  # output widths N the kernel takes


def library_path():
  """Where the library for the current source and flags lives."""
  with open(SOURCE, "rb") as file:
    digest = hashlib.sha256(file.read() + " ".join(_FLAGS).encode()).hexdigest()[:12]
  return os.path.join(os.path.dirname(__file__), f"_transposed_matmul_{digest}.so")


def build():
  """Compiles the library unless it exists; returns its path. Raises RuntimeError if g++ fails."""
  path = library_path()
  if os.path.exists(path):
    return path
  handle, partial = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))  # Atomic: concurrent builds race safely.
  os.close(handle)
  command = ["g++", *_FLAGS, f"-I{jax.ffi.include_dir()}", SOURCE, "-o", partial, "-lpthread"]
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
  for stale in set(glob.glob(os.path.join(os.path.dirname(path), "_transposed_matmul_*.so"))) - {path}:
    with contextlib.suppress(OSError):  # Built from an earlier source; another process may remove it first.
      os.remove(stale)
  return path


@functools.cache
def available():
  """Whether the kernel is registered with XLA for CPU (built and loaded on the first call)."""
  try:
    library = ctypes.cdll.LoadLibrary(build())
  except (RuntimeError, OSError) as error:
    warnings.warn(f"kernels: the C++ weight-gradient kernel is unavailable ({error}); using XLA's dot")
    return False
  jax.ffi.register_ffi_target(_TARGET, jax.ffi.pycapsule(library.TransposedMatmulHandler), platform="cpu")
  return True


_disabled = False


@contextlib.contextmanager
def disabled():
  """Within this block, functions traced take their weight gradients from XLA's dot (to compare the two)."""
  global _disabled
  before, _disabled = _disabled, True
  try:
    yield
  finally:
    _disabled = before


def transposed_matmul(a, b):
  """a^T b for a [R, M] and b [R, N] float32: the kernel on CPU where it takes N, else XLA's dot. -> [M, N]."""
  xla = lambda a, b: a.T @ b
  if (_disabled or b.shape[-1] not in _WIDTHS or a.dtype != jnp.float32 or b.dtype != jnp.float32
      or not available()):
    return xla(a, b)
  kernel = jax.ffi.ffi_call(_TARGET, jax.ShapeDtypeStruct((a.shape[1], b.shape[1]), jnp.float32),
                            vmap_method="sequential")
  return jax.lax.platform_dependent(a, b, cpu=kernel, default=xla)


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
