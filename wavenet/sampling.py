"""Fast incremental sampling from a trained WaveNet: a jit-compiled `lax.scan` of `WaveNet.step`.

A teacher-forced pass recomputes every layer over the whole receptive field
for each sample; `WaveNet.step` instead keeps a ring buffer of each layer's
past inputs, so one sample costs one evaluation of the network at one time
step. Global conditioning is folded into the gate biases once
(`prepare_conditioning`) and the weights are rearranged once
(`WaveNet.step_weights`), before the loop. `teacher_forced` runs the steps over
given inputs: the contract with the forward pass.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dsp import mulaw
from training import memory
from wavenet import mixture
from wavenet.model import WaveNet

UNROLL = 1  # sampler time steps per loop iteration (python -m benchmarks.bench_wavenet_sampling --unroll ...)


class Conditioning(NamedTuple):
  """Conditioning computed once before the loop.

  gate_bias: [B, num_layers, 2 * gate_channels] dilated bias + V h.
  local: [B, T, local_channels] upsampled local series, or None.
  excitation: [B, T, excitation_channels] source; step t reads excitation[:, t],
    the source at the sample it draws (as in `WaveNet.__call__`), or None.
  """
  gate_bias: jax.Array
  local: jax.Array = None
  excitation: jax.Array = None


def prepare_conditioning(model, params, batch, length, global_ids=None, global_vector=None, local=None,
                         excitation=None):
  """Folds global conditioning into the gate biases and upsamples the local series.

  Args:
    batch: B, the number of streams.
    length: T, the number of steps the local series (and the excitation) must cover.
    excitation: [B, >= T, excitation_channels] for a model with an excitation input.
  """
  p = params["params"]
  bias = jnp.broadcast_to(p["dilated_bias"], (batch,) + p["dilated_bias"].shape)
  global_bias = model.apply(params, batch, global_ids, global_vector, method=WaveNet.global_bias)
  if global_bias is not None:
    bias = bias + global_bias
  upsampled = None
  if local is not None and model.local_channels:
    upsampled = model.apply(params, local, length, method=WaveNet.local_bias_source)
  if model.excitation_channels:
    if excitation is None or excitation.shape[1] < length:
      raise ValueError(f"this WaveNet needs an excitation [B, >= {length}, {model.excitation_channels}]")
    excitation = jnp.asarray(excitation[:, :length], jnp.float32)
  else:
    excitation = None
  return Conditioning(bias, upsampled, excitation)


def _time_major(conditioning, steps):
  """The local series and excitation as [steps, B, C] scan inputs (None where absent)."""
  return tuple(None if series is None else jnp.swapaxes(series, 0, 1)[:steps]
               for series in (conditioning.local, conditioning.excitation))


def _check_supported(model):
  if model.input_kernel_size != 1:
    raise ValueError("incremental sampling supports input_kernel_size == 1")


class Sharpening(NamedTuple):
  """LPCNet's reshaping of each drawn distribution (Valin and Skoglund 2019, sec. 3.5); the default does nothing.

  Where the recent output is periodic the distribution is raised to the power
  c = 1 + periodicity * max(0, 1.5 g - 0.5) (its temperature divided by c),
  with g in [0, 1] the pitch correlation of the output so far: the largest
  autocorrelation over lags min_lag ... max_lag samples, normalised by the
  energy, both exponentially weighted with time constant `window` samples,
  of the output with its DC removed (a one-pole DC blocker); the energy is
  floored at that of a -40 dBFS signal, so that silence, whose constant code
  would otherwise correlate perfectly, is not periodic.
  Then classes whose probability is below `floor` are dropped and the rest
  renormalised, which removes the low-level noise a flat tail draws.
  """
  periodicity: float = 0.0  # >= 0; 1 is LPCNet's setting, 0 turns the pitch-dependent sharpening off
  floor: float = 0.0  # in [0, 1 / num_classes); LPCNet uses 0.002 of 256 classes; categorical heads only
  min_lag: int = 40  # shortest pitch period searched, in samples (2.5 ms, 400 Hz at 16 kHz)
  max_lag: int = 320  # longest (20 ms, 50 Hz at 16 kHz)
  window: float = 320.0  # time constant of the weighted autocorrelation, in samples


_DC_BLOCKER_POLE = 0.995  # y_t = x_t - x_{t-1} + pole y_{t-1}: -3 dB at 13 Hz at 16 kHz
_SILENCE_RMS = 0.01  # -40 dBFS, the "active" threshold of dsp.active_fraction


class _Periodicity(NamedTuple):
  """Running state of the pitch correlation: the last max_lag outputs (DC removed) and the weighted sums."""
  previous_input: jax.Array  # [B] the last output value, before the DC blocker
  history: jax.Array  # [B, max_lag] DC-blocked amplitudes, oldest first
  correlation: jax.Array  # [B, max_lag - min_lag + 1] weighted sum of x_t x_{t-k}, k = min_lag ... max_lag
  energy: jax.Array  # [B] weighted sum of x_t ** 2


def _empty_periodicity(sharpening, batch):
  lags = sharpening.max_lag - sharpening.min_lag + 1
  return _Periodicity(jnp.zeros((batch,)), jnp.zeros((batch, sharpening.max_lag)), jnp.zeros((batch, lags)),
                      jnp.zeros((batch,)))


def _update_periodicity(sharpening, state, value):
  """Adds the output value [B] (linear amplitude) to the state; -> (state, pitch correlation g [B] in [0, 1])."""
  decay = np.float32(np.exp(-1.0 / sharpening.window))
  blocked = value - state.previous_input + _DC_BLOCKER_POLE * state.history[:, -1]
  lagged = state.history[:, ::-1][:, sharpening.min_lag - 1:]  # [B, lags]: y_{t-min_lag} ... y_{t-max_lag}
  correlation = decay * state.correlation + blocked[:, None] * lagged
  energy = decay * state.energy + blocked ** 2
  history = jnp.concatenate([state.history[:, 1:], blocked[:, None]], axis=1)
  silence = np.float32(_SILENCE_RMS ** 2 / (1.0 - decay))  # the weighted energy of a steady -40 dBFS signal
  g = jnp.clip(jnp.max(correlation, axis=1) / jnp.maximum(energy, silence), 0.0, 1.0)
  return _Periodicity(value, history, correlation, energy), g


def _draw(model, head, uniforms, temperature, floor=0.0):
  """Head outputs [B, H], noise [B, 2], temperatures [B] and a probability floor -> codes [B] int32."""
  if model.output_kind == "mixture":
    return mixture.sample_from_uniforms(head, uniforms, model.num_classes, temperature)
  probabilities = jax.nn.softmax(head / temperature[:, None], axis=-1)
  threshold = uniforms[:, :1]
  if floor > 0:
    probabilities = jnp.maximum(probabilities - floor, 0.0)
    threshold = threshold * jnp.sum(probabilities, axis=-1, keepdims=True)
  return jnp.sum(jnp.cumsum(probabilities, axis=-1)[:, :-1] < threshold, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model",))
def teacher_forced(model, params, codes, conditioning):
  """Runs the incremental network over given inputs; the contract with the forward pass.

  Args:
    model: a WaveNet (static).
    params: its variables.
    codes: [B, T] int32 inputs.
    conditioning: from `prepare_conditioning(..., length=T)`.

  Returns:
    [B, T, head_size] head outputs; equal to `model.apply(params, codes, ...,
    padding="causal").head`.
  """
  _check_supported(model)
  weights = model.apply(params, method=WaveNet.step_weights)
  buffer = model.empty_buffer(codes.shape[0])

  def body(buffer, xs):
    t, code, local_t, excitation_t = xs
    head, buffer = model.apply(params, weights, buffer, code, t, conditioning.gate_bias, local_t, excitation_t,
                               method=WaveNet.step)
    return buffer, head

  local, excitation = _time_major(conditioning, codes.shape[1])
  _, heads = jax.lax.scan(body, buffer, (jnp.arange(codes.shape[1]), codes.T, local, excitation))
  return jnp.swapaxes(heads, 0, 1)


def _check_sharpening(model, sharpening):
  if sharpening.periodicity < 0 or not 0 <= sharpening.floor < 1.0 / model.num_classes:
    raise ValueError(f"sharpening needs periodicity >= 0 and floor in [0, 1/{model.num_classes}), got {sharpening}")
  if sharpening.floor > 0 and model.output_kind == "mixture":
    raise ValueError("a probability floor needs a categorical head; this WaveNet has a mixture")
  if not 1 <= sharpening.min_lag <= sharpening.max_lag:
    raise ValueError(f"sharpening needs 1 <= min_lag <= max_lag, got {sharpening}")


def sample(model, params, key, num_samples, conditioning, prime=None, temperature=1.0, unroll=UNROLL,
           sharpening=Sharpening()):
  """Generates `num_samples` codes per stream, one jit-compiled scan.

  Args:
    model: a WaveNet (static).
    params: its variables.
    key: PRNG key; the same key gives the same samples.
    num_samples: N, samples to generate after the prime.
    conditioning: from `prepare_conditioning(..., length=P + N)`.
    prime: optional [B, P] int32 codes of a seed clip, fed first (P >= 1);
      default one silent sample.
    temperature: > 0; scales the logits (or the mixture's scales): a scalar,
      or [B, P + N - 1] one per stream and step (step t draws sample t + 1
      of the stream), e.g. sharper where the conditioning says voiced.
    unroll: time steps per iteration of the compiled loop (static; the same
      samples for any value, only the speed changes).
    sharpening: a `Sharpening` (static): pitch-dependent sharpening and a
      probability floor, applied on top of `temperature`; the prime's codes
      count as output for its pitch correlation.

  Returns:
    [B, N] int32 codes, the continuation of the prime.
  """
  # Every argument positional, as `check_memory` compiles it: jit caches by how arguments are passed.
  return _sample(model, params, key, num_samples, conditioning, prime, temperature, unroll, sharpening)


@functools.partial(jax.jit, static_argnums=(0, 3, 7, 8))
def _sample(model, params, key, num_samples, conditioning, prime, temperature, unroll, sharpening):
  """`sample`, compiled."""
  _check_supported(model)
  _check_sharpening(model, sharpening)
  weights = model.apply(params, method=WaveNet.step_weights)
  batch = conditioning.gate_bias.shape[0]
  if prime is None:
    prime = jnp.full((batch, 1), mulaw.quantize(jnp.float32(0.0), model.num_classes - 1), jnp.int32)
  prime_length = prime.shape[1]
  total = prime_length + num_samples - 1
  uniforms = jax.random.uniform(key, (total, batch, 2))
  temperatures = jnp.broadcast_to(jnp.asarray(temperature, jnp.float32).T, (total, batch))
  forced = jnp.concatenate([prime.T, jnp.full((num_samples - 1, batch), -1, jnp.int32)], axis=0)
  local, excitation = _time_major(conditioning, total)

  def body(carry, xs):
    buffer, previous, periodicity = carry
    t, forced_t, uniforms_t, temperature_t, local_t, excitation_t = xs
    code = jnp.where(forced_t >= 0, forced_t, previous)
    head, buffer = model.apply(params, weights, buffer, code, t, conditioning.gate_bias, local_t, excitation_t,
                               method=WaveNet.step)
    if sharpening.periodicity > 0:
      periodicity, g = _update_periodicity(sharpening, periodicity, mulaw.dequantize(code, model.num_classes - 1))
      temperature_t = temperature_t / (1.0 + sharpening.periodicity * jnp.maximum(0.0, 1.5 * g - 0.5))
    drawn = _draw(model, head, uniforms_t, temperature_t, sharpening.floor)
    return (buffer, drawn, periodicity), drawn

  buffer = model.empty_buffer(batch)
  periodicity = _empty_periodicity(sharpening, batch) if sharpening.periodicity > 0 else None
  initial = (buffer, jnp.zeros((batch,), jnp.int32), periodicity)
  _, drawn = jax.lax.scan(body, initial, (jnp.arange(total), forced, uniforms, temperatures, local, excitation),
                          unroll=unroll)
  return drawn[prime_length - 1:].T


def check_memory(model, params, batch, num_samples, length, prime_length=None, step_temperatures=False,
                 sharpening=Sharpening(), host_bytes=0):
  """Refuses a request the machine cannot hold, before its conditioning is built or a sample drawn.

  Compiles `sample` for the request's shapes, as the caller will call it
  (`prepare_conditioning(..., length)`, a prime of `prime_length` codes or
  none, one temperature per stream and step or a scalar); the call that
  follows reuses the executable. XLA's count of its arguments, outputs and
  scratch, plus `host_bytes` the caller holds besides, must fit in free memory.

  Raises:
    InputError: one line with the estimate, the free memory and what to ask for instead.
  """
  def floats(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)
  conditioning = Conditioning(floats(batch, model.num_layers, 2 * model.gate_channels),
                              floats(batch, length, model.local_channels) if model.local_channels else None,
                              floats(batch, length, model.excitation_channels) if model.excitation_channels else None)
  prime = None if prime_length is None else jax.ShapeDtypeStruct((batch, prime_length), jnp.int32)
  temperature = floats(batch, (prime_length or 1) + num_samples - 1) if step_temperatures else 1.0
  memory.compile_within_memory(
      _sample, (model, params, jax.random.key(0), num_samples, conditioning, prime, temperature, UNROLL, sharpening),
      f"sampling {batch} stream(s) of {num_samples:,} samples", "ask for fewer streams or fewer seconds",
      host_bytes=host_bytes)
