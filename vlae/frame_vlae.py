"""A Variational Lossy Autoencoder at the frame rate: a global z, a frame prior as its decoder.

The encoder reads an utterance's frame vectors (`vocoder.features.frame_vectors`)
and gives q(z | x), a diagonal Gaussian. The decoder is the frame prior
(`frameprior.model.FramePrior`) conditioned on z alone (no speaker, no
gender). To leave speaker, pitch level and timbre to z, the decoder's view of
the past is cut short: each previous frame it reads is blanked with
probability `decoder_input_dropout` in training (Bowman et al.'s word
dropout, the VLAE's short-sighted decoder at the frame rate). Decodes are
rendered by the vocoder.
"""

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from frameprior import model as prior_lib


class FrameVlaeOutput(NamedTuple):
  """The ELBO's terms, each [B] in nats per utterance window.

  reconstruction: E_q[log p(x | z)], summed over the window's real frames.
  kl: KL(q(z | x) || N(0, I)), summed over latent dimensions.
  kl_free_bits: the KL with each dimension's batch mean floored at free_bits (the training objective).
  frames: [B] real frames per window.
  """
  reconstruction: jax.Array
  kl: jax.Array
  kl_free_bits: jax.Array
  frames: jax.Array


class FrameEncoder(nn.Module):
  """Frame vectors [B, T, C] with mask [B, T] -> (mean, log_std) [B, Z] of q(z | x)."""
  channels: int = 128  # width of the convolutions
  latent_channels: int = 16  # Z

  @nn.compact
  def __call__(self, frames, mask):
    x = jax.nn.relu(nn.Dense(self.channels)(frames))
    for layer in range(3):
      x = x + jax.nn.relu(nn.Conv(self.channels, (5,), kernel_dilation=(2 ** layer,), padding="SAME")(x))
    pooled = jnp.sum(x * mask[..., None], axis=1) / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
    out = nn.Dense(2 * self.latent_channels, kernel_init=nn.initializers.zeros)(pooled)
    return out[:, :self.latent_channels], out[:, self.latent_channels:]


class FrameVlae(nn.Module):
  """Encoder and frame-prior decoder; every field is one configuration knob."""
  frame_channels: int = 27  # channels of a frame vector
  latent_channels: int = 16  # Z, the global latent
  encoder_channels: int = 128  # width of the encoder
  hidden_channels: int = 256  # GRU width of the decoder
  embedding_channels: int = 32  # width of the decoder's conditioning vector
  decoder_input_dropout: float = 0.5  # share of previous frames the decoder does not see (its short sight)
  architecture: str = "frame_vlae"  # tells this model's checkpoints from others

  def setup(self):
    self.encoder = FrameEncoder(self.encoder_channels, self.latent_channels)
    self.decoder = decoder_of(self)

  def encode(self, frames, mask):
    """(mean, log_std) [B, Z] of q(z | frames)."""
    return self.encoder(frames, mask)

  def decode_output(self, previous_frames, z):
    """The decoder's PriorOutput over [B, T] frames given previous frames and z [B, Z]."""
    absent = jnp.full((z.shape[0],), -1, jnp.int32)
    return self.decoder(previous_frames, absent, absent, z)

  def reconstruction(self, frames, mask, z, key):
    """log p(frames | z) [B] in nats, summed over real frames; previous frames blanked as in training (`key`)."""
    previous = jnp.pad(frames[:, :-1], ((0, 0), (1, 0), (0, 0)))
    keep = jax.random.bernoulli(key, 1.0 - self.decoder_input_dropout, previous.shape[:2])
    output = self.decode_output(jnp.where(keep[..., None], previous, 0.0), z)
    return jnp.sum(prior_lib.log_likelihood(output, frames) * mask, axis=1)

  def __call__(self, frames, mask, key, free_bits=0.0):
    """The ELBO terms of windows of frames [B, T, C] (mask [B, T]).

    One reparameterised draw of z; previous frames blanked with probability
    `decoder_input_dropout` (drawn from `key`).
    """
    z_key, dropout_key = jax.random.split(key)
    mean, log_std = self.encode(frames, mask)
    z = mean + jnp.exp(log_std) * jax.random.normal(z_key, mean.shape)

    # Reconstruction: log p(x | z) of every real frame.
    reconstruction = self.reconstruction(frames, mask, z, dropout_key)
    # KL to the standard normal prior, in closed form per dimension.
    kl_per_dim = 0.5 * (jnp.square(mean) + jnp.exp(2 * log_std) - 1.0) - log_std
    kl = jnp.sum(kl_per_dim, axis=1)
    # Free bits (Kingma et al. 2016): each dimension's batch-mean KL floored at free_bits.
    floored = jnp.sum(jnp.maximum(jnp.mean(kl_per_dim, axis=0), free_bits)) * jnp.ones_like(kl)
    return FrameVlaeOutput(reconstruction, kl, floored, jnp.sum(mask, axis=1))


def build_frame_vlae(model_config):
  """A FrameVlae from a dict of its fields (a ConfigDict, or JSON read back from a checkpoint)."""
  return FrameVlae(**dict(model_config))


def decoder_of(model):
  """The FramePrior that decodes `model`'s z (conditioned on z alone)."""
  return prior_lib.FramePrior(frame_channels=model.frame_channels, hidden_channels=model.hidden_channels,
                              num_speakers=1, num_genders=1, embedding_channels=model.embedding_channels,
                              latent_channels=model.latent_channels)
