"""Input optimisation on a tagger's activations: fooling and neural style, by gradient descent on the waveform.

Both optimise the waveform itself (no one-hot relaxation: the tagger reads
float samples) with Adam, all steps in one jit-compiled `lax.scan`.

Fooling raises one tag's logit from a starting clip x0: it minimises
  -min(logit_tag(x), target_logit) + leash_weight * d(x, x0),
d the mean squared sample difference ("l2") or the mean squared log-mel
difference ("spectral"); once the logit reaches the target only the leash
pulls. After every step the change x - x0 is projected onto the L2 ball that
keeps the SNR of the change at least `min_snr_db`, and x is clipped to [-1, 1].

Neural style (Gatys et al. on the tagger) minimises
  content_weight * mean (A_c(x) - A_c(content))^2
  + style_weight * sum_l mean (G_l(x) - G_l(style))^2,
A_c the activations [frames, channels] of a deep layer, G_l = A_l^T A_l / frames
the time-normalised Gram matrix of a shallow layer l.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.errors import InputError
from dsp import spectral

LEASHES = ("l2", "spectral")
_LEASH_MELS = 64  # mel bands of the spectral leash


class Optimised(NamedTuple):
  """Result of an optimisation.

  audio: [n_samples] float32 in [-1, 1], the optimised waveform.
  loss_trace: [steps] float32 objective before each step.
  trace: [steps] float32 before each step, the fooled tag's probability
    (fooling) or the unweighted style loss sum_l mean (G_l(x) - G_l(style))^2
    (style).
  """
  audio: jax.Array
  loss_trace: jax.Array
  trace: jax.Array


def snr_db(reference, changed):
  """10 log10(sum reference^2 / sum (changed - reference)^2) in dB; inf when unchanged."""
  reference, changed = np.asarray(reference, np.float64), np.asarray(changed, np.float64)
  noise = np.sum(np.square(changed - reference))
  return float("inf") if noise == 0 else float(10.0 * np.log10(np.sum(np.square(reference)) / noise))


def spectral_flatness(audio, n_fft=512):
  """Mean over Hann frames (hop n_fft / 4) of geometric / arithmetic mean power of [n] float audio.

  About 0.56 for white noise, near 0 for tones; tells whether a change is noise.
  Frames of digital silence are left out (1.0 if every frame is silent).
  """
  audio = np.asarray(audio, np.float64)
  frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (0, max(0, n_fft - len(audio)))), n_fft)[::n_fft // 4]
  power = np.square(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)))
  power = power[power.sum(axis=-1) > 0]
  if not len(power):
    return 1.0
  power = np.maximum(power, 1e-20)
  return float(np.mean(np.exp(np.mean(np.log(power), axis=-1)) / np.mean(power, axis=-1)))


def tag_index(names, tag):
  """The index of `tag` in `names`.

  Raises:
    InputError: an unknown tag; the message lists the known ones.
  """
  if tag not in names:
    raise InputError(f"unknown tag {tag!r}; this tagger knows: {', '.join(names)}")
  return names.index(tag)


def check_clip(audio, model, name):
  """Raises `InputError` unless `audio` ([n] float32) is long enough for `model` (a `Tagger`) and not silent.

  A silent clip gives a zero SNR budget, so nothing could change.
  """
  if len(audio) < model.min_samples():
    raise InputError(f"{name}: {len(audio)} samples, shorter than the tagger's shortest input "
                     f"({model.min_samples()} samples); give a longer clip")
  if not np.any(audio):
    raise InputError(f"{name}: the clip is silent; give one with sound")


def probabilities(model, params, audio):
  """Tag probabilities [n_tags] float32 of one clip [n_samples]."""
  return jax.nn.sigmoid(model.apply(params, jnp.asarray(audio, jnp.float32)[None])[0])


def _log_mel(model, audio):
  return spectral.log_mel(audio, model.sample_rate, model.n_fft, model.hop, _LEASH_MELS, spectral.LOG_EPS)


@functools.partial(jax.jit, static_argnames=("model", "tag", "steps", "leash"))
def fool(model, params, audio, tag, *, steps, learning_rate, leash="l2", leash_weight=1.0, min_snr_db=20.0,
         target_probability=0.95):
  """Raises tag `tag`'s probability from clip `audio` by gradient descent on the waveform.

  Args:
    model: a `tagger.model.Tagger`; params its parameters.
    audio: [n_samples] float32 in [-1, 1], the starting clip x0.
    tag: index of the tag to raise.
    steps: Adam steps.
    learning_rate: Adam step size, in sample units.
    leash: "l2" or "spectral" distance to x0 (see the module docstring).
    leash_weight: weight of the distance.
    min_snr_db: the change is kept at least this far below the clip (dB).
    target_probability: the logit is not pushed past this probability.

  Returns:
    `Optimised`.
  """
  if leash not in LEASHES:
    raise InputError(f"unknown leash {leash!r}; choose one of {', '.join(LEASHES)}")
  target_logit = jnp.log(target_probability / (1.0 - target_probability))
  # A hair (1e-4, 0.001 dB) inside the ball, so that float32 rounding cannot put the SNR below min_snr_db.
  radius = jnp.sqrt(jnp.sum(jnp.square(audio))) * 10.0 ** (-min_snr_db / 20.0) * (1.0 - 1e-4)
  reference_mel = _log_mel(model, audio)

  def objective(change):
    logit = model.apply(params, (audio + change)[None])[0, tag]
    if leash == "l2":
      distance = jnp.mean(jnp.square(change))
    else:
      distance = jnp.mean(jnp.square(_log_mel(model, audio + change) - reference_mel))
    return -jnp.minimum(logit, target_logit) + leash_weight * distance, jax.nn.sigmoid(logit)

  optimizer = optax.adam(learning_rate)

  def step(carry, _):
    change, opt_state = carry
    (loss, probability), grad = jax.value_and_grad(objective, has_aux=True)(change)
    updates, opt_state = optimizer.update(grad, opt_state)
    change = change + updates
    change = change * jnp.minimum(1.0, radius / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(change))), 1e-12))
    change = jnp.clip(audio + change, -1.0, 1.0) - audio
    return (change, opt_state), (loss, probability)

  change = jnp.zeros_like(audio)
  (change, _), (losses, probabilities_) = jax.lax.scan(step, (change, optimizer.init(change)), None, length=steps)
  return Optimised(audio + change, losses, probabilities_)


def default_layers(model):
  """(content layer, style layers) names: the deepest activation; the frontend and first stage."""
  names = model.layer_names()
  return names[-1], names[:2] if len(names) > 2 else names[:1]


def _gram(acts):
  """[frames, channels] -> [channels, channels] time-normalised Gram matrix."""
  return acts.T @ acts / acts.shape[0]


def layer_activations(model, params, audio, layers):
  """{layer: [frames, channels]} of one clip [n_samples]."""
  _, acts = model.apply(params, audio[None], return_activations=True)
  return {layer: acts[layer][0] for layer in layers}


@functools.partial(jax.jit, static_argnames=("model", "content_layer", "style_layers", "steps"))
def style_transfer(model, params, content, style, start, *, content_layer, style_layers, steps, learning_rate,
                   content_weight=1.0, style_weight=1.0):
  """Neural style on the tagger's activations, by Adam on the waveform.

  Args:
    model: a `tagger.model.Tagger`; params its parameters.
    content: [n_samples] float32, the content clip (the output has its length).
    style: [n_style] float32, the style clip.
    start: [n_samples] float32, the starting waveform (e.g. the content clip or noise).
    content_layer: activation name for content (see `Tagger.layer_names`).
    style_layers: tuple of activation names for style.
    steps: Adam steps; learning_rate: Adam step size in sample units.
    content_weight, style_weight: the objective's weights.

  Returns:
    `Optimised` (its `trace` holds the unweighted style loss).
  """
  content_target = layer_activations(model, params, content, (content_layer,))[content_layer]
  style_targets = {layer: _gram(acts) for layer, acts in layer_activations(model, params, style, style_layers).items()}

  def objective(audio):
    acts = layer_activations(model, params, audio, (content_layer,) + tuple(style_layers))
    content_loss = jnp.mean(jnp.square(acts[content_layer] - content_target))
    style_loss = sum(jnp.mean(jnp.square(_gram(acts[layer]) - style_targets[layer])) for layer in style_layers)
    return content_weight * content_loss + style_weight * style_loss, style_loss

  optimizer = optax.adam(learning_rate)

  def step(carry, _):
    audio, opt_state = carry
    (loss, style_loss), grad = jax.value_and_grad(objective, has_aux=True)(audio)
    updates, opt_state = optimizer.update(grad, opt_state)
    return (jnp.clip(audio + updates, -1.0, 1.0), opt_state), (loss, style_loss)

  (audio, _), (losses, style_losses) = jax.lax.scan(step, (start, optimizer.init(start)), None, length=steps)
  return Optimised(audio, losses, style_losses)
