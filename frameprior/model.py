"""An autoregressive prior over the vocoder's frame vectors, conditioned on speaker and gender.

A GRU reads the previous frame vector (normalised log-F0, voicing, energy,
log-mel; `vocoder.features.frame_vectors`) and the conditioning, and predicts
the next frame: a Bernoulli for voicing and a diagonal Gaussian for the other
channels. At 100 frames per second this carries the long-range structure
(pitch contours, syllable rhythm, envelope) that sample-level generation
learns slowly; the vocoder renders the frames into audio.

The recurrence is written once (`_gru`) and used both by the teacher-forced
pass (`__call__`, one `lax.scan` over time) and by sampling (`step`).
"""

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

VOICING_CHANNEL = 1  # index of the voicing flag in a frame vector
_MIN_LOG_STD = -5.0  # floor of the predicted log standard deviations


class PriorOutput(NamedTuple):
  """Per-frame predictive distribution.

  voicing_logit: [B, T] logit of P(voiced).
  mean: [B, T, C] Gaussian mean of every channel (the voicing channel's is unused).
  log_std: [B, T, C] Gaussian log standard deviation.
  """
  voicing_logit: jax.Array
  mean: jax.Array
  log_std: jax.Array


def _gru(hidden_kernel, hidden_bias, state, projected):
  """One GRU step: state [B, H], projected input [B, 3H] (x W_x + b_x) -> new state [B, H]."""
  size = state.shape[-1]
  recurrent = state @ hidden_kernel + hidden_bias
  reset = jax.nn.sigmoid(projected[:, :size] + recurrent[:, :size])
  update = jax.nn.sigmoid(projected[:, size:2 * size] + recurrent[:, size:2 * size])
  candidate = jnp.tanh(projected[:, 2 * size:] + reset * recurrent[:, 2 * size:])
  return (1.0 - update) * candidate + update * state


def _normal(fan_in):
  return nn.initializers.normal(stddev=fan_in ** -0.5)


class FramePrior(nn.Module):
  """GRU prior over frame vectors; every field is one configuration knob."""
  frame_channels: int = 27  # channels of a frame vector (vocoder.features.LOCAL_CHANNELS)
  hidden_channels: int = 256  # GRU state width
  num_speakers: int = 16  # speaker ids 0 .. num_speakers - 1 (-1: absent)
  num_genders: int = 2  # gender ids (-1: absent)
  embedding_channels: int = 32  # width of the speaker and gender embeddings
  latent_channels: int = 0  # width of a continuous global latent z (a VLAE's decoder); 0 = none
  architecture: str = "frame_prior"  # tells this model's checkpoints from others

  def setup(self):
    hidden, channels = self.hidden_channels, self.frame_channels
    self.speaker_embedding = self.param("speaker_embedding", _normal(1), (self.num_speakers, self.embedding_channels))
    self.gender_embedding = self.param("gender_embedding", _normal(1), (self.num_genders, self.embedding_channels))
    self.input_kernel = self.param("input_kernel", _normal(channels + self.embedding_channels),
                                   (channels + self.embedding_channels, 3 * hidden))
    self.input_bias = self.param("input_bias", nn.initializers.zeros, (3 * hidden,))
    self.hidden_kernel = self.param("hidden_kernel", _normal(hidden), (hidden, 3 * hidden))
    self.hidden_bias = self.param("hidden_bias", nn.initializers.zeros, (3 * hidden,))
    self.initial_kernel = self.param("initial_kernel", _normal(self.embedding_channels),
                                     (self.embedding_channels, hidden))
    self.output_hidden = nn.Dense(hidden, name="output_hidden")
    self.output = nn.Dense(1 + 2 * channels, name="output", kernel_init=nn.initializers.zeros)
    if self.latent_channels:
      self.latent_kernel = self.param("latent_kernel", _normal(self.latent_channels),
                                      (self.latent_channels, self.embedding_channels))

  def condition(self, speaker, gender, latent=None):
    """Summed embeddings [B, E] of speaker and gender ids [B] (an id of -1 adds nothing) and of a latent [B, Z]."""
    embedded = 0.0
    for ids, table in ((speaker, self.speaker_embedding), (gender, self.gender_embedding)):
      embedded = embedded + jnp.where((ids >= 0)[:, None], table[jnp.maximum(ids, 0)], 0.0)
    if self.latent_channels:
      embedded = embedded + (jnp.zeros((speaker.shape[0], self.latent_channels)) if latent is None
                             else latent) @ self.latent_kernel
    return embedded

  def initial_state(self, condition):
    """GRU state [B, H] before the first frame."""
    return jnp.tanh(condition @ self.initial_kernel)

  def _project(self, frames, condition):
    """[..., C] previous frames and [B, E] condition -> [..., 3H] GRU input projections."""
    expanded = jnp.broadcast_to(condition.reshape(condition.shape[:1] + (1,) * (frames.ndim - 2) + condition.shape[1:]),
                                frames.shape[:-1] + condition.shape[-1:])
    return jnp.concatenate([frames, expanded], axis=-1) @ self.input_kernel + self.input_bias

  def _predict(self, states):
    """GRU states [..., H] -> PriorOutput with [...] leading axes."""
    out = self.output(jax.nn.relu(self.output_hidden(states)))
    channels = self.frame_channels
    return PriorOutput(out[..., 0], out[..., 1:1 + channels],
                       jnp.maximum(out[..., 1 + channels:], _MIN_LOG_STD))

  def __call__(self, previous_frames, speaker, gender, latent=None):
    """Teacher-forced pass.

    Args:
      previous_frames: [B, T, C] the frame before each predicted one (zeros
        before the first).
      speaker, gender: [B] int32 ids, -1 for absent.
      latent: [B, latent_channels] global latent, or None (zeros).

    Returns:
      PriorOutput over T frames: the distribution of frame t given the
      frames before it.
    """
    condition = self.condition(speaker, gender, latent)
    projected = self._project(previous_frames, condition)
    kernel, bias = self.hidden_kernel, self.hidden_bias

    def body(state, projected_t):
      state = _gru(kernel, bias, state, projected_t)
      return state, state

    _, states = jax.lax.scan(body, self.initial_state(condition), jnp.swapaxes(projected, 0, 1))
    return self._predict(jnp.swapaxes(states, 0, 1))

  def step(self, state, previous_frame, condition):
    """One frame: state [B, H], previous frame [B, C], condition [B, E] -> (new state, PriorOutput [B])."""
    state = _gru(self.hidden_kernel, self.hidden_bias, state, self._project(previous_frame, condition))
    return state, self._predict(state)


def log_likelihood(output, frames):
  """Per-frame log-likelihood [B, T] in nats of frames [B, T, C] under `output`.

  The voicing channel is scored by its Bernoulli, every other channel by its
  Gaussian.
  """
  voiced = frames[..., VOICING_CHANNEL]
  voicing = voiced * jax.nn.log_sigmoid(output.voicing_logit) + (1 - voiced) * jax.nn.log_sigmoid(-output.voicing_logit)
  z = (frames - output.mean) * jnp.exp(-output.log_std)
  gaussian = -0.5 * jnp.square(z) - output.log_std - 0.5 * jnp.log(2 * jnp.pi)
  keep = jnp.arange(frames.shape[-1]) != VOICING_CHANNEL
  return voicing + jnp.sum(jnp.where(keep, gaussian, 0.0), axis=-1)


def draw(output, key, temperature=1.0):
  """A frame vector [B, C] from a PriorOutput [B]: voicing drawn, the rest Gaussian with std x temperature."""
  voicing_key, gaussian_key = jax.random.split(key)
  voiced = jax.random.bernoulli(voicing_key, jax.nn.sigmoid(output.voicing_logit)).astype(jnp.float32)
  noise = jax.random.normal(gaussian_key, output.mean.shape)
  frame = output.mean + temperature * jnp.exp(output.log_std) * noise
  return frame.at[:, VOICING_CHANNEL].set(voiced)


def sample(model, params, key, num_frames, speaker, gender, temperature=1.0, prime=None, latent=None,
           input_dropout=0.0):
  """Draws [B, num_frames, C] frame vectors, one jit-able scan.

  Args:
    model, params: a FramePrior and its variables.
    key: PRNG key; the same key gives the same frames.
    num_frames: frames to draw per stream (after the prime).
    speaker, gender: [B] int32 ids (-1 absent).
    temperature: > 0, scales the Gaussian standard deviations.
    prime: optional [B, P, C] frame vectors read first (teacher-forced); the
      draw continues from them.
    latent: [B, latent_channels] global latent of a VLAE decoder, or None.
    input_dropout: a Python float in [0, 1): each previous frame the model
      reads is blanked with this probability, as a decoder trained with
      input dropout saw them; 0 feeds every frame.
  """
  condition = model.apply(params, speaker, gender, latent, method=FramePrior.condition)
  state = model.apply(params, condition, method=FramePrior.initial_state)
  batch = speaker.shape[0]
  primed = jnp.zeros((batch, 0, model.frame_channels)) if prime is None else jnp.asarray(prime, jnp.float32)
  forced = jnp.concatenate([primed, jnp.zeros((batch, num_frames, model.frame_channels))], axis=1)
  is_forced = jnp.arange(forced.shape[1]) < primed.shape[1]
  previous = jnp.zeros((batch, model.frame_channels), jnp.float32)

  def body(carry, xs):
    state, previous = carry
    step_key, forced_t, is_forced_t = xs
    if input_dropout > 0:
      step_key, dropout_key = jax.random.split(step_key)
      previous = jnp.where(jax.random.bernoulli(dropout_key, 1.0 - input_dropout, (batch, 1)), previous, 0.0)
    state, output = model.apply(params, state, previous, condition, method=FramePrior.step)
    frame = jnp.where(is_forced_t, forced_t, draw(output, step_key, temperature))
    return (state, frame), frame

  xs = (jax.random.split(key, forced.shape[1]), jnp.swapaxes(forced, 0, 1), is_forced)
  _, frames = jax.lax.scan(body, (state, previous), xs)
  return jnp.swapaxes(frames, 0, 1)[:, primed.shape[1]:]
