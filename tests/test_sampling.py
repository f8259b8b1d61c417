"""The incremental sampler against the teacher-forced forward pass (the contract)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsp

from wavenet import sampling
from wavenet.model import WaveNet
from tests.conftest import TINY_WAVENET

TINY = TINY_WAVENET
CONDITIONED = dict(global_categories=(("speaker", 3), ("gender", 2)), global_vector_channels=2, local_channels=3,
                   local_hop=4, local_upsample_strides=(2, 2), excitation_channels=2)


def random_params(model, length, batch=2, **kwargs):
  params = model.init(jax.random.key(0), jnp.zeros((batch, length), jnp.int32), **kwargs)
  # Non-zero biases so that the test also covers them.
  return jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(x.size), x.shape), params)


@pytest.mark.parametrize("kernel_size,conditioned,input_kind,output_kind", [  # each value, and each pair of
    (2, False, "one_hot", "categorical"), (3, True, "one_hot", "categorical"),  # kernel size and conditioning
    (2, True, "embedding", "categorical"), (3, False, "scalar", "mixture"), (2, True, "scalar", "mixture")])
def test_incremental_steps_equal_the_teacher_forced_pass(kernel_size, conditioned, input_kind, output_kind):
  length = 40
  model = WaveNet(**TINY, kernel_size=kernel_size, input_kind=input_kind, output_kind=output_kind, num_mixtures=3,
                  **(CONDITIONED if conditioned else {}))
  kwargs = {}
  if conditioned:
    kwargs = dict(global_ids={"speaker": jnp.array([2, 0]), "gender": jnp.array([0, 1])},
                  global_vector=jnp.array([[0.5, -1.0], [1.0, 0.2]]),
                  local=jax.random.normal(jax.random.key(1), (2, length // 4, 3)),
                  excitation=jax.random.normal(jax.random.key(2), (2, length, 2)))
  params = random_params(model, length, **kwargs)
  codes = jnp.asarray(np.random.default_rng(0).integers(0, 32, (2, length)), jnp.int32)
  expected = model.apply(params, codes, padding="causal", **kwargs).head
  conditioning = sampling.prepare_conditioning(model, params, 2, length, **kwargs)
  got = sampling.teacher_forced(model, params, codes, conditioning)
  np.testing.assert_allclose(got, expected, atol=1e-4)


def test_the_steps_have_the_forward_pass_gradient_and_a_garbage_row_leaves_the_others_alone():
  length, model = 24, WaveNet(**TINY, kernel_size=3, **CONDITIONED)
  kwargs = dict(global_ids={"speaker": jnp.array([2, 0, 1]), "gender": jnp.array([0, 1, 1])},
                global_vector=jnp.array([[0.5, -1.0], [1.0, 0.2], [0.0, 0.0]]),
                local=jax.random.normal(jax.random.key(1), (3, length // 4, 3)),
                excitation=jax.random.normal(jax.random.key(2), (3, length, 2)))
  params = random_params(model, length, batch=3, **kwargs)
  codes = jnp.asarray(np.random.default_rng(0).integers(0, 32, (3, length)), jnp.int32)

  def through_steps(params, kwargs):
    conditioning = sampling.prepare_conditioning(model, params, 3, length, **kwargs)
    return sampling.teacher_forced(model, params, codes, conditioning)

  def loss(heads):  # rows 0 and 1 only: row 2 is the garbage row below
    return jnp.sum(jnp.sin(heads[:2]))

  forward = jax.grad(lambda p: loss(model.apply(p, codes, padding="causal", **kwargs).head))(params)
  stepped = jax.grad(lambda p: loss(through_steps(p, kwargs)))(params)
  for a, b in zip(jax.tree.leaves(forward), jax.tree.leaves(stepped)):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
  garbage = dict(kwargs, global_vector=kwargs["global_vector"].at[2].set(jnp.nan),
                 local=kwargs["local"].at[2].set(jnp.nan), excitation=kwargs["excitation"].at[2].set(1e30))
  clean, dirty = through_steps(params, kwargs), through_steps(params, garbage)
  assert not np.all(np.isfinite(dirty[2]))
  np.testing.assert_array_equal(dirty[:2], clean[:2])  # no row of a batch reads another


def test_sampling_is_deterministic_primed_and_conditioned():
  model = WaveNet(**TINY, global_categories=(("speaker", 3),))
  params = random_params(model, 16)

  def draw(key, speaker, prime=None, temperature=1.0, unroll=1):
    conditioning = sampling.prepare_conditioning(model, params, 3, 0, {"speaker": jnp.full((3,), speaker)})
    return np.asarray(sampling.sample(model, params, key, 50, conditioning, prime, temperature, unroll=unroll))

  first = draw(jax.random.key(1), 0)
  assert first.shape == (3, 50) and first.dtype == np.int32 and first.min() >= 0 and first.max() < 32
  np.testing.assert_array_equal(first, draw(jax.random.key(1), 0))
  np.testing.assert_array_equal(first, draw(jax.random.key(1), 0, unroll=4))
  assert not np.array_equal(first, draw(jax.random.key(2), 0))
  assert not np.array_equal(first[0], first[1])  # Streams are independent.
  assert not np.array_equal(first, draw(jax.random.key(1), 2))
  prime = jnp.asarray(np.random.default_rng(3).integers(0, 32, (3, 10)), jnp.int32)
  assert not np.array_equal(first, draw(jax.random.key(1), 0, prime))
  # Near zero temperature each draw is the mode of the logits that the drawn history gives.
  cold = draw(jax.random.key(4), 0, temperature=1e-3)
  inputs = np.concatenate([np.full((3, 1), dsp.quantize(np.float32(0.0), 31)), cold[:, :-1]], axis=1)
  logits = np.asarray(model.apply(params, inputs, {"speaker": jnp.zeros((3,), jnp.int32)}, padding="causal").head)
  top_two = np.sort(logits, axis=-1)[..., -2:]
  clear = top_two[..., 1] - top_two[..., 0] > 0.02
  assert clear.mean() > 0.5
  np.testing.assert_array_equal(cold[clear], logits.argmax(-1)[clear])


def test_sampled_codes_follow_the_model_distribution():
  """First sampled code after a prime: its empirical distribution matches softmax(logits)."""
  model = WaveNet(**TINY)
  params = random_params(model, 16)
  prime = jnp.asarray(np.random.default_rng(5).integers(0, 32, (1, 12)), jnp.int32)
  batch = 4000
  conditioning = sampling.prepare_conditioning(model, params, batch, 0)
  drawn = np.asarray(sampling.sample(model, params, jax.random.key(6), 1, conditioning,
                                     jnp.broadcast_to(prime, (batch, 12))))[:, 0]
  logits = model.apply(params, prime, padding="causal").head[0, -1]
  expected = np.asarray(jax.nn.softmax(logits))
  empirical = np.bincount(drawn, minlength=32) / batch
  assert 0.5 * np.abs(empirical - expected).sum() < 0.05


@pytest.mark.parametrize("input_kind,output_kind", [("one_hot", "categorical"), ("scalar", "mixture")])
def test_a_temperature_per_stream_and_step_is_that_temperature_where_it_applies(input_kind, output_kind):
  model = WaveNet(**TINY, input_kind=input_kind, output_kind=output_kind, num_mixtures=3)
  params = random_params(model, 16)
  conditioning = sampling.prepare_conditioning(model, params, 2, 0)
  draw = lambda temperature: np.asarray(sampling.sample(model, params, jax.random.key(7), 30, conditioning,
                                                        temperature=temperature))
  warm, cold = draw(1.0), draw(0.05)
  np.testing.assert_array_equal(draw(jnp.full((2, 30), 1.0)), warm)
  mixed = jnp.concatenate([jnp.full((1, 30), 1.0), jnp.full((1, 30), 0.05)])  # stream 0 warm, stream 1 cold
  got = draw(mixed)
  np.testing.assert_array_equal(got[0], warm[0])
  np.testing.assert_array_equal(got[1], cold[1])
  assert not np.array_equal(warm, cold)


def pitch_correlation(sharpening, outputs):
  """The sampler's pitch correlation [B] after the outputs [B, T] (linear amplitudes), one jitted scan."""
  def step(state, value):
    return sampling._update_periodicity(sharpening, state, value)
  state = sampling._empty_periodicity(sharpening, outputs.shape[0])
  return np.asarray(jax.jit(lambda values: jax.lax.scan(step, state, values)[1][-1])(jnp.asarray(outputs).T))


def test_pitch_correlation_is_high_for_a_periodic_output_and_low_for_noise_and_silence():
  sharpening = sampling.Sharpening(periodicity=1.0)
  t = np.arange(2000)
  outputs = np.stack([0.5 * np.sin(2 * np.pi * t / 100.0),  # 160 Hz at 16 kHz: period 100, within the lags
                      0.2 + 0.5 * np.sin(2 * np.pi * t / 100.0),  # the same with an offset
                      np.random.default_rng(0).uniform(-0.5, 0.5, t.size),
                      np.full(t.size, 0.003),  # silence: a constant code near zero
                      0.003 * np.sin(2 * np.pi * t / 100.0)]).astype(np.float32)  # a tone at -53 dBFS
  g = pitch_correlation(sharpening, outputs)
  assert g[0] > 0.95 and g[1] > 0.95
  assert g[2] < 0.2 and g[3] < 0.01 and g[4] < 0.1


def _first_draws(model, params, prime, batch, sharpening, temperature=1.0):
  conditioning = sampling.prepare_conditioning(model, params, batch, 0)
  primes = jnp.broadcast_to(prime, (batch, prime.shape[1]))
  return np.asarray(sampling.sample(model, params, jax.random.key(6), 1, conditioning, primes,
                                    temperature=temperature, sharpening=sharpening))[:, 0]


def test_a_probability_floor_drops_the_unlikely_classes_and_renormalises_the_rest():
  model = WaveNet(**TINY)
  params = random_params(model, 16)
  prime = jnp.asarray(np.random.default_rng(5).integers(0, 32, (1, 12)), jnp.int32)
  floor, batch = 0.025, 4000
  drawn = _first_draws(model, params, prime, batch, sampling.Sharpening(floor=floor))
  probabilities = np.asarray(jax.nn.softmax(model.apply(params, prime, padding="causal").head[0, -1]))
  expected = np.maximum(probabilities - floor, 0.0)
  expected /= expected.sum()
  assert (expected == 0).sum() >= 3  # The floor removes some classes of this distribution ...
  empirical = np.bincount(drawn, minlength=32) / batch
  assert np.all(empirical[expected == 0] == 0)  # ... and they are never drawn.
  assert 0.5 * np.abs(empirical - expected).sum() < 0.05
  with pytest.raises(ValueError, match="floor"):
    _first_draws(model, params, prime, 2, sampling.Sharpening(floor=1.0 / 32))


def test_sharpening_divides_the_temperature_by_c_of_the_pitch_correlation_so_far():
  model = WaveNet(**TINY)
  params = random_params(model, 16)
  t = np.arange(600)
  periodic = dsp.quantize(0.5 * np.sin(2 * np.pi * t / 100.0).astype(np.float32), 31)[None]
  noise = np.random.default_rng(8).integers(0, 32, (1, 600))
  sharpening = sampling.Sharpening(periodicity=4.0)
  for prime, periodic_prime in ((periodic, True), (noise, False)):
    g = pitch_correlation(sharpening, dsp.dequantize(np.asarray(prime), 31))
    c = 1.0 + 4.0 * jnp.maximum(0.0, 1.5 * jnp.float32(g[0]) - 0.5)
    assert (c > 4.0) if periodic_prime else (c == 1.0)
    sharpened = _first_draws(model, params, jnp.asarray(prime), 256, sharpening)
    np.testing.assert_array_equal(sharpened, _first_draws(model, params, jnp.asarray(prime), 256,
                                                          sampling.Sharpening(), temperature=1.0 / c))
    assert np.array_equal(sharpened, _first_draws(model, params, jnp.asarray(prime), 256,
                                                  sampling.Sharpening())) != periodic_prime


@pytest.mark.parametrize("primed,step_temperatures", [(False, True), (True, False)])
def test_the_memory_check_compiles_the_program_the_sampler_then_runs(primed, step_temperatures, caplog):
  model = WaveNet(**TINY, **CONDITIONED)
  batch, num_samples, prime_length = 2, 12, (5 if primed else 1)
  length = prime_length + num_samples
  kwargs = dict(global_ids={"speaker": jnp.array([2, 0]), "gender": jnp.array([0, 1])},
                global_vector=jnp.array([[0.5, -1.0], [1.0, 0.2]]),
                local=jax.random.normal(jax.random.key(1), (batch, length // 4 + 1, 3)),
                excitation=jax.random.normal(jax.random.key(2), (batch, length + 3, 2)))
  params = random_params(model, length + 3, **kwargs)
  conditioning = sampling.prepare_conditioning(model, params, batch, length, **kwargs)
  prime = jnp.zeros((batch, prime_length), jnp.int32) if primed else None
  temperature = jnp.full((batch, length - 1), 0.8, jnp.float32) if step_temperatures else 0.8
  with jax.log_compiles(), caplog.at_level("WARNING"):
    sampling.check_memory(model, params, batch, num_samples, length, prime_length if primed else None,
                          step_temperatures=step_temperatures)
    compiled_by_the_check = [record for record in caplog.records if "compilation of jit(_sample)" in record.message]
    sampling.sample(model, params, jax.random.key(0), num_samples, conditioning, prime=prime, temperature=temperature)
  assert len(compiled_by_the_check) == 1
  assert len([record for record in caplog.records if "compilation of jit(_sample)" in record.message]) == 1
