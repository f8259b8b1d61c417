"""The C++ weight-gradient kernel: its product against float64, its gradient against XLA's, its fallback."""

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
  assert kernels._TARGET in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()


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
  assert kernels._TARGET not in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()
  with kernels.disabled():
    assert kernels._TARGET not in jax.jit(kernels.transposed_matmul).lower(*_matrices(600, 8, 64)).as_text()
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
      assert kernels._TARGET not in jax.jit(kernels.transposed_matmul).lower(a, b).as_text()
      kernels.transposed_matmul(a, b)
    assert [str(w.message) for w in caught] == [
        "kernels: the C++ weight-gradient kernel is unavailable (cannot run g++ (no such file)); using XLA's dot"]
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
