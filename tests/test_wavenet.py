"""WaveNet: causality and receptive field by gradients, conditioning, heads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wavenet import loss as loss_lib
from wavenet import mixture
from wavenet.model import WaveNet
from tests.conftest import TINY_WAVENET

TINY = TINY_WAVENET


def init(model, length=40, batch=2, **kwargs):
  return jax.jit(model.init)(jax.random.key(0), jnp.zeros((batch, length), jnp.int32), **kwargs)


def apply(model, params, codes, **kwargs):
  return jax.jit(model.apply, static_argnames=("padding", "return_activations"))(params, codes, **kwargs)


def random_codes(shape, num_classes=32, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(0, num_classes, shape), jnp.int32)


@pytest.mark.parametrize("kernel_size,input_kernel_size", [(2, 1), (3, 1), (2, 2)])
def test_targets_depend_only_on_the_receptive_field_before_them(kernel_size, input_kernel_size):
  model = WaveNet(**TINY, kernel_size=kernel_size, input_kernel_size=input_kernel_size)
  expected_field = input_kernel_size + (kernel_size - 1) * 2 * (1 + 2 + 4)
  assert model.receptive_field == expected_field
  length = expected_field + 12
  params = init(model, length)
  codes = random_codes((1, length))
  soft = jax.nn.one_hot(codes, 32)
  jacobian = jax.jit(jax.jacrev(lambda inputs: loss_lib.log_probs(model, params, inputs, codes)[0]))(soft)
  for target in range(expected_field, length):
    influence = np.abs(np.asarray(jacobian[target - expected_field, 0])).sum(-1)
    seen = np.flatnonzero(influence > 0)
    assert seen.min() == target - expected_field and seen.max() == target - 1
    assert len(seen) == expected_field


def test_valid_outputs_are_the_tail_of_causal_outputs():
  model = WaveNet(**TINY, kernel_size=3, global_vector_channels=3, local_channels=2, local_hop=4,
                  local_upsampling="repeat")
  codes = random_codes((2, 50))
  vector = jnp.ones((2, 3))
  local = jax.random.normal(jax.random.key(1), (2, 13, 2))
  params = init(model, 50, global_vector=vector, local=local)
  valid = apply(model, params, codes, global_vector=vector, local=local, padding="valid")
  causal = apply(model, params, codes, global_vector=vector, local=local, padding="causal", return_activations=True)
  assert valid.head.shape == (2, 50 - model.receptive_field + 1, 32)
  np.testing.assert_allclose(valid.head, causal.head[:, model.receptive_field - 1:], atol=1e-5)
  assert len(causal.activations) == model.num_layers
  assert all(a.shape == (2, 50, 8) for a in causal.activations)


def test_global_and_local_conditioning_change_the_output_and_zero_is_unconditioned():
  conditioned = WaveNet(**TINY, global_categories=(("speaker", 3), ("gender", 2)), global_vector_channels=4,
                        local_channels=5, local_hop=8, local_upsample_strides=(2, 4))
  codes = random_codes((2, 48))
  local = jax.random.normal(jax.random.key(2), (2, 6, 5))
  vector = jax.random.normal(jax.random.key(3), (2, 4))
  ids = {"speaker": jnp.array([0, 2]), "gender": jnp.array([1, 0])}
  params = init(conditioned, 48, global_ids=ids, global_vector=vector, local=local)

  def head(**kwargs):
    return np.asarray(apply(conditioned, params, codes, padding="causal", **kwargs).head)

  unconditioned = WaveNet(**TINY)
  shared = {"params": {k: v for k, v in params["params"].items()
                       if not k.startswith(("global_", "local_"))}}
  plain = np.asarray(apply(unconditioned, shared, codes, padding="causal").head)
  np.testing.assert_allclose(head(), plain, atol=1e-6)
  np.testing.assert_allclose(head(global_vector=jnp.zeros((2, 4)), local=jnp.zeros((2, 6, 5))), plain, atol=1e-6)
  for kwargs in ({"global_ids": ids}, {"global_ids": {"gender": ids["gender"]}}, {"global_vector": vector},
                 {"local": local}):
    assert np.abs(head(**kwargs) - plain).max() > 1e-3, kwargs
  swapped = {"speaker": ids["speaker"][::-1], "gender": ids["gender"]}
  assert np.abs(head(global_ids=ids) - head(global_ids=swapped)).max() > 1e-3
  with pytest.raises(ValueError, match="unknown global conditioning"):
    head(global_ids={"accent": ids["gender"]})


def test_local_conditioning_is_aligned_to_its_frames():
  model = WaveNet(**TINY, local_channels=1, local_hop=4, local_upsampling="repeat")
  codes = random_codes((1, 32))
  params = init(model, 32, local=jnp.zeros((1, 8, 1)))
  base = np.asarray(apply(model, params, codes, local=jnp.zeros((1, 8, 1)), padding="causal").head)
  bumped = np.asarray(apply(model, params, codes, local=jnp.zeros((1, 8, 1)).at[0, 5].set(1.0), padding="causal").head)
  changed = np.flatnonzero(np.abs(bumped - base).max(-1)[0] > 1e-6)
  assert changed.min() == 5 * 4  # Frame 5 first reaches the output at its first sample.


@pytest.mark.parametrize("input_kind", ["one_hot", "embedding", "scalar"])
def test_input_kinds_and_mixture_head(input_kind):
  model = WaveNet(**TINY, input_kind=input_kind, output_kind="mixture", num_mixtures=4)
  codes = random_codes((2, 40))
  params = init(model, 40)
  log_p = jax.jit(lambda p: loss_lib.log_probs(model, p, codes, codes))(params)
  assert log_p.shape == (2, 40 - model.receptive_field) and np.all(np.isfinite(log_p))


def test_mixture_is_a_normalised_distribution_over_codes():
  params = jax.random.normal(jax.random.key(4), (3, 15)) * 2.0
  grid = jnp.arange(256)
  probabilities = jax.jit(lambda p: jnp.exp(mixture.log_prob(p[:, None, :], grid[None, :])))(params)
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=2e-3)
  draws = jax.jit(mixture.sample)(jax.random.key(5), jnp.broadcast_to(params[0], (20000, 15)))
  empirical = np.bincount(np.asarray(draws), minlength=256) / 20000
  assert 0.5 * np.abs(empirical - np.asarray(probabilities[0])).sum() < 0.05
  assert int(jax.jit(mixture.mode)(params[0])) == int(jnp.argmax(probabilities[0]))


@pytest.mark.parametrize("padding", ["valid", "causal"])
def test_integer_codes_equal_their_one_hot_inputs(padding):
  model = WaveNet(**TINY, input_kernel_size=3)
  codes = random_codes((2, 40))
  params = init(model, 40)
  from_codes = apply(model, params, codes, padding=padding).head
  from_one_hot = apply(model, params, jax.nn.one_hot(codes, 32), padding=padding).head
  np.testing.assert_allclose(from_codes, from_one_hot, atol=1e-5)
