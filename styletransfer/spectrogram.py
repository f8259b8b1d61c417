"""Spectrogram style transfer by Gram-matrix matching, one compiled loop.

Content and style are `log1p|STFT|`, time-major `[n_frames, n_bins]` float32
(`dsp.stft` conventions). A feature map turns a log-magnitude into
`features: [n_feature_frames, n_features]`:

  * `gram` (the report's): the log-magnitude itself, so the style is the
    frequency x frequency Gram matrix of the spectrogram.
  * `random_conv` (Ulyanov & Lebedev, neural-style-audio-tf): ReLU of one
    random-weight 1-D convolution over time with the frequency bins as input
    channels ("valid" padding, so `n_frames - width + 1` feature frames).

The optimised log-magnitude has the content's shape and minimises

  content_weight * ||F - F_content||^2 + style_weight * ||G - G_style||^2,

with `G = F^T F / n_feature_frames` (time-normalised, so clips of different
lengths compare). The style term is evaluated in frame space,
`||A A^T||^2 - 2 ||A B^T||^2 + ||B B^T||^2` with `A = F / sqrt(t)` and
`B = F_style / sqrt(t_style)`: [t, t] products instead of [n_features,
n_features] ones, exact up to float32 rounding. The result is turned into
audio by Griffin-Lim (`dsp.griffin_lim`) or with the content's phase.
"""

import contextlib
import dataclasses
import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

import dsp
from common.errors import InputError

FEATURES = ("gram", "random_conv")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
PHASES = ("griffin_lim", "content")
SILENCE_DBFS = -80.0


@dataclasses.dataclass(frozen=True)
class StyleTransferConfig:
  """Everything that defines one style-transfer run (defaults: Ulyanov's recipe)."""

  n_fft: int = 2048  # STFT frame length in samples.
  hop: int = 512  # STFT hop in samples.
  features: str = "random_conv"  # Feature map, one of FEATURES.
  n_filters: int = 4096  # random_conv: output channels.
  filter_width: int = 11  # random_conv: kernel width in STFT frames.
  relu: bool = True  # random_conv: apply a ReLU to the convolution output.
  content_weight: float = 1e-2  # Weight of the content loss.
  style_weight: float = 1.0  # Weight of the style (Gram) loss.
  init: str = "noise"  # Start of the optimised log-magnitude, one of INITS.
  noise_scale: float = 1e-3  # Standard deviation of the noise start (log1p units).
  optimizer: str = "lbfgs"  # One of OPTIMIZERS.
  iterations: int = 300  # Optimiser steps (L-BFGS iterations or Adam steps).
  learning_rate: float = 0.05  # Adam step size (log1p units); L-BFGS uses its line search.
  lbfgs_memory: int = 10  # L-BFGS history length.
  max_linesearch_steps: int = 20  # Cap on zoom line-search evaluations per L-BFGS step.
  chunk_iterations: int = 20  # Steps per compiled call: progress bar and L-BFGS content/style trace.
  phase: str = "griffin_lim"  # Phase of the output, one of PHASES.
  griffin_lim_iterations: int = 500  # Griffin-Lim projections.
  griffin_lim_momentum: float = 0.99  # Fast Griffin-Lim momentum in [0, 1).
  seed: int = 0  # Seeds the conv weights, the noise start and the Griffin-Lim phase.

  def __post_init__(self):
    choices = {"features": FEATURES, "optimizer": OPTIMIZERS, "init": INITS, "phase": PHASES}
    for name, allowed in choices.items():
      if getattr(self, name) not in allowed:
        raise InputError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
    positive = ("n_fft", "hop", "n_filters", "filter_width", "iterations", "lbfgs_memory",
                "max_linesearch_steps", "chunk_iterations", "learning_rate")
    for name in positive:
      if not getattr(self, name) > 0:
        raise InputError(f"{name}={getattr(self, name)} must be positive")
    for name in ("content_weight", "style_weight", "noise_scale", "griffin_lim_iterations"):
      if not getattr(self, name) >= 0:
        raise InputError(f"{name}={getattr(self, name)} must be a number >= 0")
    if not 0.0 <= self.griffin_lim_momentum < 1.0:
      raise InputError(f"griffin_lim_momentum={self.griffin_lim_momentum} must be in [0, 1)")
    if self.hop > self.n_fft:
      raise InputError(f"hop={self.hop} exceeds n_fft={self.n_fft}; use a hop of at most n_fft")

  @property
  def n_bins(self):
    return self.n_fft // 2 + 1


class StyleTarget(NamedTuple):
  """The style Gram matrix S = B^T B in frame-space form, computed once."""

  features: jax.Array  # B: [t_style, n_features] float32, style features / sqrt(t_style).
  gram_sq_norm: jax.Array  # [2] float32, ||S||_F^2 = ||B B^T||_F^2 as high + low parts.


class Targets(NamedTuple):
  """What the optimised log-magnitude is pulled towards."""

  content_features: jax.Array  # [t, n_features] float32.
  style: StyleTarget


class LossTrace(NamedTuple):
  """Per-step losses, [iterations] float32 each; NaN where not recorded.

  Adam records all three at the iterate each step differentiates. L-BFGS
  records `total` after every step and `content`/`style` after each chunk.
  """

  total: np.ndarray
  content: np.ndarray
  style: np.ndarray


class TransferResult(NamedTuple):
  """Output of `transfer`."""

  audio: np.ndarray  # [n_content_samples] float32 in [-1, 1].
  log_magnitude: np.ndarray  # [n_frames, n_bins] float32, the optimised log1p|STFT|.
  trace: LossTrace
  losses: dict  # Final "total", "content", "style" (floats, unweighted parts).
  timings: dict  # Seconds per stage (wall and CPU), evaluation count, ms per evaluation.


def log_magnitude(audio, n_fft=2048, hop=512):
  """[..., n_samples] float32 -> [..., n_frames, n_fft // 2 + 1] float32 log1p|STFT|."""
  return jnp.log1p(jnp.abs(dsp.stft(audio, n_fft, hop)))


def random_conv_weights(seed, n_bins, n_filters=4096, width=11):
  """Gaussian conv kernel with Ulyanov's scale sqrt(2) * sqrt(2 / ((n_bins + n_filters) * width)).

  Returns:
    [width, n_bins, n_filters] float32 numpy array, a function of `seed` only.
  """
  std = math.sqrt(2.0) * math.sqrt(2.0 / ((n_bins + n_filters) * width))
  kernel = np.random.default_rng(seed).standard_normal((width, n_bins, n_filters), dtype=np.float32)
  kernel *= np.float32(std)
  return kernel


def _unfold(log_magnitude, width):
  """[n_frames, n_bins] -> [n_frames - width + 1, width * n_bins], tap-major."""
  n_out = log_magnitude.shape[0] - width + 1
  return jnp.concatenate([log_magnitude[tap:tap + n_out] for tap in range(width)], axis=-1)


def conv_features(log_magnitude, kernel, relu=True):
  """Random 1-D convolution over time as one matmul on the unfolded input.

  One [n_out, width * n_bins] x [width * n_bins, n_filters] product; its
  gradient is one product with the kernel transposed in the contraction
  (no transposed copy), measured faster on CPU than `lax.conv_general_dilated`.

  Args:
    log_magnitude: [n_frames, n_bins] float32, n_frames >= width.
    kernel: [width, n_bins, n_filters] float32.
    relu: apply a ReLU.

  Returns:
    [n_frames - width + 1, n_filters] float32 ("valid" convolution).
  """
  width, n_bins, n_filters = kernel.shape
  response = _unfold(log_magnitude, width) @ kernel.reshape(width * n_bins, n_filters)
  return jax.nn.relu(response) if relu else response


def features(log_magnitude, kernel, config):
  """The configured feature map: [n_frames, n_bins] -> [t, n_features] float32.

  `kernel` is the `random_conv` kernel, None for `gram`.
  """
  if config.features == "gram":
    return log_magnitude
  return conv_features(log_magnitude, kernel, config.relu)


def _two_sum(a, b):
  """Error-free float addition (Knuth): a + b == total + error exactly."""
  total = a + b
  b_part = total - a
  return total, (a - (total - b_part)) + (b - b_part)


def _split_sum(values):
  """Sum of a float32 array as [2] = high + low, with about twice float32's precision.

  `high` sums the values rounded to a power-of-two grid coarse enough that
  every partial sum is exact in float32; `low` sums the small remainders.
  """
  bound = jnp.maximum(jnp.sum(jnp.abs(values)), jnp.finfo(values.dtype).tiny)
  grid = jnp.exp2(jnp.ceil(jnp.log2(bound)) + 1.0 - jnp.finfo(values.dtype).nmant)
  rounded = jnp.round(values / grid) * grid
  return jnp.stack([jnp.sum(rounded), jnp.sum(values - rounded)])


def style_target(style_features):
  """Precomputes the style side of `style_loss` from `[t_style, n_features]` features."""
  normalised = style_features / math.sqrt(style_features.shape[0])
  return StyleTarget(normalised, _split_sum(jnp.square(normalised @ normalised.T)))


def style_loss(features, target):
  """||F^T F / t - S||_F^2 for `features: [t, n_features]`, in frame space.

  The value ||A A^T||^2 - 2 ||A B^T||^2 + ||S||^2 is a small difference of
  sums near ||S||^2, which a float32 scalar resolves only to ~1e-7 of it (too
  coarse for the line search near convergence); the sums are therefore kept as
  high + low pairs. The gradient is that of the plain float32 expression.
  """
  normalised = features / math.sqrt(features.shape[0])
  own = jnp.square(normalised @ normalised.T)
  cross = jnp.square(normalised @ target.features.T)
  plain = jnp.sum(own) - 2.0 * jnp.sum(cross) + target.gram_sq_norm[0]
  own_sum, cross_sum = _split_sum(own), _split_sum(cross)
  high, error_1 = _two_sum(own_sum[0], -2.0 * cross_sum[0])
  high, error_2 = _two_sum(high, target.gram_sq_norm[0])
  precise = high + (error_1 + error_2 + own_sum[1] - 2.0 * cross_sum[1] + target.gram_sq_norm[1])
  return plain + jax.lax.stop_gradient(precise - plain)


def content_loss(features, content_features):
  """||F - F_content||_F^2 for two `[t, n_features]` arrays."""
  return jnp.sum(jnp.square(features - content_features))


def losses(log_magnitude, targets, kernel, config):
  """Weighted objective of `log_magnitude: [n_frames, n_bins]`.

  Returns:
    (total, (content, style)): float32 scalars; content and style unweighted.
  """
  current = features(log_magnitude, kernel, config)
  content = content_loss(current, targets.content_features)
  style = style_loss(current, targets.style)
  return config.content_weight * content + config.style_weight * style, (content, style)


def validate_clip(audio, config, name):
  """Raises `InputError` if `audio: [n_samples]` cannot be a content or style clip."""
  audio = np.asarray(audio)
  if audio.ndim != 1:
    raise InputError(f"{name}: expected mono audio [n_samples], got shape {audio.shape}")
  if audio.shape[0] < config.n_fft:
    raise InputError(f"{name}: {audio.shape[0]} samples is shorter than one {config.n_fft}-sample "
                     f"FFT frame; give a longer clip")
  peak = float(np.max(np.abs(audio)))
  if peak == 0.0 or 20.0 * math.log10(peak) < SILENCE_DBFS:
    level = "-inf" if peak == 0.0 else f"{20.0 * math.log10(peak):.0f}"
    raise InputError(f"{name}: silent (peak {level} dBFS, below {SILENCE_DBFS:.0f} dBFS); "
                     f"give a clip with sound in it")
  n_frames = 1 + audio.shape[0] // config.hop
  if config.features == "random_conv" and n_frames < config.filter_width:
    needed = (config.filter_width - 1) * config.hop
    raise InputError(f"{name}: {n_frames} STFT frames is fewer than the conv width "
                     f"{config.filter_width}; give a clip of at least {needed} samples")


def _solver(config):
  """optax Adam, or L-BFGS with its zoom line search (strong Wolfe) as in the optax docs."""
  if config.optimizer == "adam":
    return optax.adam(config.learning_rate)
  linesearch = optax.scale_by_zoom_linesearch(
      max_linesearch_steps=config.max_linesearch_steps, initial_guess_strategy="one")
  return optax.lbfgs(memory_size=config.lbfgs_memory, linesearch=linesearch)


class _LoopState(NamedTuple):
  """What one compiled chunk carries to the next."""

  step: jax.Array  # [] int32, steps done.
  log_magnitude: jax.Array  # [n_frames, n_bins] float32, the optimised variable.
  optimizer_state: optax.OptState
  evaluations: jax.Array  # [] int32, loss-and-gradient evaluations so far.
  trace: LossTrace  # Of jax arrays, [iterations] float32 each.


@functools.partial(jax.jit, static_argnames="config")
def _extract(content_audio, style_audio, kernel, key, config):
  """Content log-magnitude, optimisation start and both clips' feature targets."""
  content_log = log_magnitude(content_audio, config.n_fft, config.hop)
  style_log = log_magnitude(style_audio, config.n_fft, config.hop)
  targets = Targets(features(content_log, kernel, config),
                    style_target(features(style_log, kernel, config)))
  if config.init == "noise":
    start = config.noise_scale * jax.random.normal(key, content_log.shape, jnp.float32)
  else:
    start = content_log
  return start, targets


@functools.partial(jax.jit, static_argnames="config")
def _run_chunk(state, stop, targets, kernel, config):
  """Runs optimiser steps `state.step .. stop - 1` in one `lax.while_loop`."""
  objective = functools.partial(losses, targets=targets, kernel=kernel, config=config)
  solver = _solver(config)

  def record(trace, step, total, content, style):
    return LossTrace(trace.total.at[step].set(total), trace.content.at[step].set(content),
                     trace.style.at[step].set(style))

  def adam_step(state):
    (total, (content, style)), grad = jax.value_and_grad(objective, has_aux=True)(state.log_magnitude)
    updates, optimizer_state = solver.update(grad, state.optimizer_state)
    return _LoopState(state.step + 1, optax.apply_updates(state.log_magnitude, updates),
                      optimizer_state, state.evaluations + 1,
                      record(state.trace, state.step, total, content, style))

  def value_fn(log_magnitude):
    return objective(log_magnitude)[0]

  value_and_grad = optax.value_and_grad_from_state(value_fn)

  def lbfgs_step(state):
    stored_value = optax.tree.get(state.optimizer_state, "value")
    value, grad = value_and_grad(state.log_magnitude, state=state.optimizer_state)
    updates, optimizer_state = solver.update(grad, state.optimizer_state, state.log_magnitude,
                                             value=value, grad=grad, value_fn=value_fn)
    # value_and_grad_from_state evaluates only when no finite value is stored.
    evaluations = (state.evaluations + jnp.where(jnp.isfinite(stored_value), 0, 1)
                   + optax.tree.get(optimizer_state, "num_linesearch_steps"))
    trace = state.trace._replace(
        total=state.trace.total.at[state.step].set(optax.tree.get(optimizer_state, "value")))
    return _LoopState(state.step + 1, optax.apply_updates(state.log_magnitude, updates),
                      optimizer_state, evaluations, trace)

  step = adam_step if config.optimizer == "adam" else lbfgs_step
  state = jax.lax.while_loop(lambda state: state.step < stop, step, state)
  if config.optimizer == "lbfgs":
    total, (content, style) = objective(state.log_magnitude)
    state = state._replace(trace=record(state.trace, state.step - 1, total, content, style))
  return state


@functools.partial(jax.jit, static_argnames="config")
def _final_losses(log_magnitude, targets, kernel, config):
  total, (content, style) = losses(log_magnitude, targets, kernel, config)
  return total, content, style


@functools.partial(jax.jit, static_argnames=("config", "length"))
def _to_audio(log_magnitude, content_audio, key, config, length):
  """[n_frames, n_bins] log1p magnitude -> [length] float32 audio, phase per `config.phase`."""
  magnitude = jnp.maximum(jnp.expm1(log_magnitude), 0.0)
  if config.phase == "griffin_lim":
    return dsp.griffin_lim(magnitude, key, n_fft=config.n_fft, hop=config.hop, length=length,
                           iterations=config.griffin_lim_iterations,
                           momentum=config.griffin_lim_momentum)
  phase = jnp.angle(dsp.stft(content_audio, config.n_fft, config.hop))
  return dsp.istft(magnitude * jnp.exp(1j * phase), n_fft=config.n_fft, hop=config.hop, length=length)


@contextlib.contextmanager
def _stopwatch(timings, name):
  """Adds the block's wall-clock and process CPU seconds to timings[name] and timings[name + "_cpu"].

  On a shared machine the wall clock includes time other processes held the
  cores; CPU seconds count only this process's work (all of its threads).
  """
  wall, cpu = time.perf_counter(), time.process_time()
  yield
  timings[name] = timings.get(name, 0.0) + time.perf_counter() - wall
  timings[name + "_cpu"] = timings.get(name + "_cpu", 0.0) + time.process_time() - cpu


def transfer(content_audio, style_audio, config=StyleTransferConfig(), progress=False):
  """Optimises a log-magnitude towards the content's features and the style's Gram.

  Args:
    content_audio: [n_content] float32 in [-1, 1]; sets the output length.
    style_audio: [n_style] float32 in [-1, 1], any length.
    config: `StyleTransferConfig`.
    progress: show a tqdm bar over the optimisation.

  Returns:
    `TransferResult`. Its timings hold wall-clock seconds for compile,
    feature_extraction (conv weights, STFTs, targets), optimisation, phase and
    total (this call, compilation included); the same names + "_cpu" in
    process CPU seconds; evaluations (of loss and gradient) and
    ms_per_evaluation (optimisation wall time over evaluations).

  Raises:
    InputError: a clip that is not mono, shorter than an FFT frame (or than
      the conv width) or silent.
  """
  timings = {}
  with _stopwatch(timings, "total"):
    validate_clip(content_audio, config, "content clip")
    validate_clip(style_audio, config, "style clip")
    content_audio = jnp.asarray(content_audio, jnp.float32)
    style_audio = jnp.asarray(style_audio, jnp.float32)
    init_key, phase_key = jax.random.split(jax.random.key(config.seed))

    with _stopwatch(timings, "feature_extraction"):
      kernel = None
      if config.features == "random_conv":
        kernel = jnp.asarray(random_conv_weights(config.seed, config.n_bins, config.n_filters,
                                                 config.filter_width))
    with _stopwatch(timings, "compile"):
      extract = _extract.lower(content_audio, style_audio, kernel, init_key, config=config).compile()
    with _stopwatch(timings, "feature_extraction"):
      start, targets = jax.block_until_ready(extract(content_audio, style_audio, kernel, init_key))

    nan_trace = jnp.full((config.iterations,), jnp.nan, jnp.float32)
    state = _LoopState(jnp.int32(0), start, _solver(config).init(start), jnp.int32(0),
                       LossTrace(nan_trace, nan_trace, nan_trace))
    with _stopwatch(timings, "compile"):
      run_chunk = _run_chunk.lower(state, jnp.int32(0), targets, kernel, config=config).compile()
    with _stopwatch(timings, "optimisation"), tqdm.tqdm(
        total=config.iterations, desc=f"{config.optimizer} ({config.features})", unit="step",
        disable=not progress, leave=False) as bar:
      for stop in range(config.chunk_iterations, config.iterations + config.chunk_iterations,
                        config.chunk_iterations):
        state = jax.block_until_ready(run_chunk(state, jnp.int32(min(stop, config.iterations)),
                                                targets, kernel))
        bar.update(int(state.step) - bar.n)
        bar.set_postfix(loss=f"{float(state.trace.total[int(state.step) - 1]):.4g}")
    timings["evaluations"] = int(state.evaluations)
    timings["ms_per_evaluation"] = 1e3 * timings["optimisation"] / timings["evaluations"]

    with _stopwatch(timings, "compile"):
      final_losses = _final_losses.lower(state.log_magnitude, targets, kernel, config=config).compile()
      to_audio = _to_audio.lower(state.log_magnitude, content_audio, phase_key, config=config,
                                 length=content_audio.shape[0]).compile()
    total, content, style = (float(value) for value in final_losses(state.log_magnitude, targets, kernel))
    with _stopwatch(timings, "phase"):
      audio = np.asarray(to_audio(state.log_magnitude, content_audio, phase_key), np.float32)
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
      audio = audio / peak
  trace = LossTrace(*(np.asarray(values) for values in state.trace))
  return TransferResult(audio, np.asarray(state.log_magnitude), trace,
                        {"total": total, "content": content, "style": style}, timings)
