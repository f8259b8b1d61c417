"""The C++ kernels: their products and likelihood against float64, their gradients against XLA's, their fallback."""

import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kernels
from common.errors import InputError
from kernels import __main__ as build_command
from wavenet import loss as loss_lib
from wavenet.model import WaveNet


def _matrices(rows, m, n, seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.normal(size=(rows, m)), jnp.float32), jnp.asarray(rng.normal(size=(rows, n)), jnp.float32))


def test_the_kernel_is_built_and_is_what_the_product_runs_on_cpu():
  assert kernels.available()
  a, b = _matrices(700, 64, 64)
  assert kernels._TRANSPOSED_MATMUL in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()


# Rows: under one block, a ragged last block, one share (under 8 blocks) and several shares with a ragged end;
# columns of a: a whole number of register tiles or not, down to one.
@pytest.mark.parametrize("rows, m, n", [(5, 64, 64), (700, 64, 32), (3000, 37, 16), (9001, 64, 64), (20000, 1, 32),
                                        (8193, 130, 64)])
def test_the_product_equals_float64_to_float32_rounding(rows, m, n):
  a, b = _matrices(rows, m, n)
  exact = np.asarray(a, np.float64).T @ np.asarray(b, np.float64)
  # Each entry sums `rows` products of unit normals; a missing or repeated row would be off by about 1.
  np.testing.assert_allclose(np.asarray(kernels.transposed_matmul(a, b)), exact, rtol=0, atol=1e-5 * np.sqrt(rows))


def test_a_width_the_kernel_does_not_take_and_a_disabled_kernel_are_xlas_dot():
  a, b = _matrices(600, 8, 48)
  assert kernels._TRANSPOSED_MATMUL not in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()
  with kernels.disabled():
    assert kernels._TRANSPOSED_MATMUL not in jax.jit(kernels.transposed_matmul).lower(*_matrices(600, 8, 64)).as_text()
  np.testing.assert_allclose(kernels.transposed_matmul(a, b), a.T @ b, rtol=1e-6, atol=1e-5)


def test_dense_has_the_value_and_both_gradients_of_a_matmul():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(3, 500, 48)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(48, 64)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(3, 500, 64)), jnp.float32)
  loss = lambda product: lambda x, w: jnp.sum(jnp.sin(product(x, w)) * target)
  value, grads = jax.value_and_grad(loss(kernels.dense), argnums=(0, 1))(x, w)
  plain_value, plain_grads = jax.value_and_grad(loss(jnp.matmul), argnums=(0, 1))(x, w)
  assert float(value) == pytest.approx(float(plain_value), rel=1e-6)
  for grad, plain in zip(grads, plain_grads):
    np.testing.assert_allclose(grad, plain, rtol=2e-5, atol=2e-5 * float(jnp.abs(plain).max()))


def _head(rows, k, c, d, v, seed=3):
  """Gated activations x [rows, k], the head's three layers, labels [rows]: unit-scale pre-activations."""
  rng = np.random.default_rng(seed)
  normal = lambda *shape, scale=1.0: jnp.asarray(rng.normal(size=shape) * scale, jnp.float32)
  layers = [(normal(k, c, scale=k ** -0.5), normal(c, scale=0.3)), (normal(c, d, scale=(c / 2) ** -0.5), normal(d, scale=0.3)),
            (normal(d, v, scale=3 * (d / 2) ** -0.5), normal(v))]
  return normal(rows, k), layers, jnp.asarray(rng.integers(0, v, rows), jnp.int32)


def _head_program(x, layers, labels):
  loss = lambda x, layers: kernels.relu_mlp_log_prob(x, layers, labels).sum()
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(x, layers).as_text()


def _reference_log_prob(x, layers, labels):
  """The head's log-likelihood in float64 numpy, and the ReLU masks of its two hidden layers."""
  h = np.asarray(x, np.float64)
  masks = []
  for index, (kernel, bias) in enumerate(layers):
    if index:
      masks.append(h > 0)
      h = np.maximum(h, 0)
    h = h @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)
  top = h.max(axis=-1, keepdims=True)
  log_softmax = h - top - np.log(np.exp(h - top).sum(axis=-1, keepdims=True))
  return np.take_along_axis(log_softmax, np.asarray(labels)[:, None], axis=-1)[:, 0], masks


# Rows: under one chunk of 96; one share with a ragged chunk; two shares (one per core) with a ragged end.
# Widths: whole 64-wide register tiles, and 16- and 32-wide ones.
@pytest.mark.parametrize("rows, k, c, d, v", [(5, 64, 64, 64, 64), (300, 48, 32, 16, 80), (1001, 640, 256, 128, 256)])
def test_the_fused_head_has_the_log_likelihood_and_gradients_of_xlas(rows, k, c, d, v):
  x, layers, labels = _head(rows, k, c, d, v)
  assert kernels._HEAD_FORWARD in _head_program(x, layers, labels)
  assert kernels._HEAD_BACKWARD in _head_program(x, layers, labels)
  weights = jnp.asarray(np.random.default_rng(4).uniform(0.5, 2.0, rows), jnp.float32)  # a cotangent per row
  loss = lambda x, layers: jnp.sum(kernels.relu_mlp_log_prob(x, layers, labels) * weights)
  log_prob = kernels.relu_mlp_log_prob(x, layers, labels)
  exact, masks = _reference_log_prob(x, layers, labels)
  np.testing.assert_allclose(log_prob, exact, rtol=1e-5, atol=1e-5)
  grads = jax.grad(loss, argnums=(0, 1))(x, layers)
  with kernels.disabled():
    assert kernels._HEAD_FORWARD not in _head_program(x, layers, labels)
    plain_grads = jax.grad(loss, argnums=(0, 1))(x, layers)
  for grad, plain in zip(jax.tree.leaves(grads), jax.tree.leaves(plain_grads)):
    np.testing.assert_allclose(grad, plain, rtol=1e-4, atol=1e-5 * float(jnp.abs(plain).max()))
  assert all(0.2 < mask.mean() < 0.8 for mask in masks)  # Both ReLUs pass and stop gradient.


def test_the_fused_head_is_exact_where_the_softmax_underflows_and_gives_nan_for_an_unknown_label():
  x, layers, labels = _head(200, 32, 16, 16, 32)
  (w1, b1), (w2, b2), (w3, b3) = layers
  layers = [(w1, b1), (w2, b2), (w3 * 60.0, b3)]  # logits spread over hundreds of nats: most exp(l - max) are 0
  log_prob = np.asarray(kernels.relu_mlp_log_prob(x, layers, labels))
  exact, _ = _reference_log_prob(x, layers, labels)
  assert exact.min() < -200
  np.testing.assert_allclose(log_prob, exact, rtol=1e-5, atol=1e-3)
  outside = kernels.relu_mlp_log_prob(x[:2], layers, jnp.array([32, -1], jnp.int32))
  assert np.isnan(np.asarray(outside)).all()


def test_the_fused_head_leaves_widths_off_the_16_grid_to_xla():
  x, layers, labels = _head(50, 24, 16, 16, 16)
  assert kernels._HEAD_FORWARD not in _head_program(x, layers, labels)
  np.testing.assert_allclose(kernels.relu_mlp_log_prob(x, layers, labels), _reference_log_prob(x, layers, labels)[0],
                             rtol=1e-5, atol=1e-5)


def _layer(batch, length, channels, gate, taps, dilation, per_position_bias, seed=5):
  """A residual layer's stream x [B, T, R], kernel, bias, residual kernel and bias: unit-scale pre-activations."""
  rng = np.random.default_rng(seed)
  normal = lambda *shape, scale=1.0: jnp.asarray(rng.normal(size=shape) * scale, jnp.float32)
  time_out = length - (taps - 1) * dilation
  bias = normal(batch, time_out if per_position_bias else 1, 2 * gate, scale=0.3)
  return (normal(batch, length, channels), normal(taps * channels, 2 * gate, scale=(taps * channels) ** -0.5), bias,
          normal(gate, channels, scale=gate ** -0.5), normal(channels, scale=0.3))


def _reference_layer(x, kernel, bias, residual_kernel, residual_bias, dilation):
  """The layer in float64 numpy: (z, out)."""
  x, kernel, bias, residual_kernel, residual_bias = (np.asarray(a, np.float64)
                                                     for a in (x, kernel, bias, residual_kernel, residual_bias))
  channels, gate = x.shape[-1], residual_kernel.shape[0]
  taps = kernel.shape[0] // channels
  time_out = x.shape[1] - (taps - 1) * dilation
  pre = bias + sum(x[:, j * dilation: j * dilation + time_out] @ kernel[j * channels:(j + 1) * channels]
                   for j in range(taps))
  z = np.tanh(pre[..., :gate]) / (1 + np.exp(-pre[..., gate:]))
  return z, x[:, x.shape[1] - time_out:] + z @ residual_kernel + residual_bias


def _layer_program(dilation, *arrays):
  loss = lambda *arrays: sum(jnp.sum(output) for output in kernels.gated_residual(*arrays, dilation))
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4))).lower(*arrays).as_text()


# Under one chunk of 256 positions; two shares (one per core), the first ending 4 positions into the second
# example, so that what it gives the next 200 rows of d x is spilled; three taps and a dilation wider than a
# chunk, with a bias per position (local conditioning); two shares within one example at the standard WaveNet's
# widest dilation.
@pytest.mark.parametrize("batch, length, channels, gate, taps, dilation, per_position_bias",
                         [(1, 40, 16, 16, 2, 1, False), (2, 2500, 32, 32, 2, 200, False),
                          (3, 1200, 16, 48, 3, 300, True), (1, 5000, 32, 32, 2, 512, True)])
def test_the_fused_layer_has_the_outputs_and_gradients_of_xlas(batch, length, channels, gate, taps, dilation,
                                                               per_position_bias):
  arrays = _layer(batch, length, channels, gate, taps, dilation, per_position_bias)
  program = _layer_program(dilation, *arrays)
  assert kernels._LAYER_FORWARD in program and kernels._LAYER_BACKWARD in program
  for output, exact in zip(kernels.gated_residual(*arrays, dilation), _reference_layer(*arrays, dilation)):
    np.testing.assert_allclose(output, exact, rtol=1e-5, atol=1e-5)
  rng = np.random.default_rng(6)
  z_weights, out_weights = (jnp.asarray(rng.normal(size=output.shape), jnp.float32)  # cotangents of both outputs
                            for output in kernels.gated_residual(*arrays, dilation))
  def loss(*arrays):
    z, out = kernels.gated_residual(*arrays, dilation)
    return jnp.sum(z * z_weights) + jnp.sum(out * out_weights)
  grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(*arrays)
  with kernels.disabled():
    assert kernels._LAYER_FORWARD not in _layer_program(dilation, *arrays)
    plain_grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(*arrays)
  for name, grad, plain in zip(("x", "kernel", "bias", "residual kernel", "residual bias"), grads, plain_grads):
    assert grad.shape == plain.shape, name
    np.testing.assert_allclose(grad, plain, rtol=1e-4, atol=1e-5 * float(jnp.abs(plain).max()), err_msg=name)


def test_the_fused_layers_activation_is_exact_near_zero_and_where_it_saturates():
  # With x = 0 the pre-activations are the bias: filters and gates from 1e-7 to 90 in size, of both signs.
  magnitudes = np.geomspace(1e-7, 90.0, 64)
  pre = np.concatenate([magnitudes * np.resize([1, -1], 64), -magnitudes[::-1] * np.resize([1, 1, -1, -1], 64)])
  arrays = list(_layer(1, 1, 16, 64, 1, 1, False))
  arrays[0] = jnp.zeros_like(arrays[0])
  arrays[2] = jnp.asarray(pre[None, None], jnp.float32)
  z, _ = kernels.gated_residual(*arrays, 1)
  exact = np.tanh(pre[:64]) / (1 + np.exp(-pre[64:]))
  np.testing.assert_allclose(np.asarray(z)[0, 0], exact, rtol=2e-6, atol=1e-34)  # atol: below it, float32 underflows
  loss = lambda bias: jnp.sum(kernels.gated_residual(arrays[0], arrays[1], bias, *arrays[3:], 1)[0])
  dpre = np.asarray(jax.grad(loss)(arrays[2]))[0, 0]
  tanh, sigmoid = np.tanh(pre[:64]), 1 / (1 + np.exp(-pre[64:]))
  np.testing.assert_allclose(dpre, np.concatenate([(1 - tanh ** 2) * sigmoid, tanh * sigmoid * (1 - sigmoid)]),
                             rtol=1e-5, atol=1e-7)


def test_the_fused_layer_leaves_widths_off_the_16_grid_to_xla():
  arrays = _layer(2, 50, 8, 16, 2, 4, False)
  assert kernels._LAYER_FORWARD not in _layer_program(4, *arrays)
  for output, exact in zip(kernels.gated_residual(*arrays, 4), _reference_layer(*arrays, 4)):
    np.testing.assert_allclose(output, exact, rtol=1e-5, atol=1e-5)


def test_the_fused_layer_gives_no_positions_for_an_input_no_longer_than_its_span():
  arrays = _layer(2, 50, 16, 16, 2, 4, False)
  short = (arrays[0][:, :4], *arrays[1:])  # model.init traces the WaveNet on inputs shorter than its receptive field
  assert [output.shape for output in kernels.gated_residual(*short, 4)] == [(2, 0, 16), (2, 0, 16)]


def test_the_wavenet_gradient_is_xlas_to_float32_rounding():
  model = WaveNet(num_stacks=1, layers_per_stack=4, residual_channels=16, gate_channels=16, skip_channels=32,
                  head_channels=32, num_classes=64, global_categories=(("speaker", 3),))
  codes = jnp.asarray(np.random.default_rng(2).integers(0, 64, (2, model.receptive_field + 300)), jnp.int32)
  batch = {"codes": codes, "speaker": jnp.array([0, 2], jnp.int32)}
  params = model.init(jax.random.key(0), codes[:, :-1], {"speaker": batch["speaker"]})
  loss_fn = loss_lib.make_loss_fn(model, ("speaker",))
  gradient = lambda: jax.grad(lambda p: loss_fn(p, batch, None, step=0, train=True)[0])(params)
  with_kernel = gradient()
  with kernels.disabled():
    with_xla = gradient()
  for name, grad in with_kernel["params"].items():
    plain = with_xla["params"][name]
    np.testing.assert_allclose(grad, plain, rtol=1e-4, atol=1e-5 * float(jnp.abs(plain).max()), err_msg=name)
  assert float(jnp.abs(with_kernel["params"]["dilated_kernel"]).max()) > 0


def test_without_a_compiler_the_product_is_xlas_with_one_warning(monkeypatch):
  def no_compiler():
    raise RuntimeError("cannot run g++ (no such file)")
  monkeypatch.setattr(kernels, "build", no_compiler)
  kernels.available.cache_clear()
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      a, b = _matrices(600, 64, 64)
      assert kernels._TRANSPOSED_MATMUL not in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()
      kernels.transposed_matmul(a, b)
      x, layers, labels = _head(100, 32, 16, 16, 16)
      assert kernels._HEAD_FORWARD not in _head_program(x, layers, labels)
      assert kernels._LAYER_FORWARD not in _layer_program(4, *_layer(2, 50, 16, 16, 2, 4, False))
    assert [str(w.message) for w in caught] == [
        "kernels: the C++ kernels are unavailable (cannot run g++ (no such file)); using XLA's own products"]
  finally:
    kernels.available.cache_clear()


def test_the_build_command_refuses_a_flag_and_a_failed_build_in_one_line(monkeypatch, capsys):
  build_command.main([])
  assert capsys.readouterr().out.strip() == f"kernels: {kernels.library_path()}"
  with pytest.raises(InputError, match=r"^unrecognized arguments: --bogus; see python -m kernels --help$"):
    build_command.main(["--bogus"])
  def failing():
    raise RuntimeError("g++ failed: no such file")
  monkeypatch.setattr(kernels, "build", failing)
  with pytest.raises(InputError, match=r"\(g\+\+ failed: no such file\): install g\+\+ \(apt-get install g\+\+\), "
                     r"then rerun$"):
    build_command.main([])


@pytest.mark.slow
def test_freed_memory_is_reused_without_page_faults_and_a_second_step_faults_almost_none():
  # A fresh process, so that the package is imported before XLA starts its threads, as in every command. Huge
  # pages are off in it, so that a fault is one 4 KB page whatever the machine's setting.
  script = """
import ctypes
import resource
libc = ctypes.CDLL(None)
libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
import jax
import jax.numpy as jnp
import kernels
def faults():
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def fill_a_new_block(size=64 << 20):  # beyond the largest mmap threshold glibc adapts to (32 MB)
  block = libc.malloc(size)
  before = faults()
  ctypes.memset(block, 1, size)
  after = faults()
  libc.free(block)
  return after - before
fill_a_new_block()
filled_again = fill_a_new_block()
step = jax.jit(lambda x: jnp.sum(jnp.tanh(x @ x.T) @ x))  # temporaries of 64 MB
x = jnp.ones((4096, 1024), jnp.float32)
for _ in range(3):
  before = faults()
  step(x).block_until_ready()
print(filled_again, faults() - before, kernels.retain_freed_memory())
"""
  counts = {}
  for system in ("0", "1"):
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ELECTRIC_BEATS_SYSTEM_MALLOC=system))
    assert done.returncode == 0, done.stderr[-2000:]
    counts[system] = done.stdout.split()
  # glibc's defaults map each such block anew and fault in all 16,384 of its pages; retained, its pages are reused.
  assert counts["1"][2] == "False" and int(counts["1"][0]) >= 16_000
  assert counts["0"][2] == "True" and int(counts["0"][0]) < 100
  assert int(counts["0"][1]) < 100  # XLA's third step
