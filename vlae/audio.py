"""The Variational Lossy Autoencoder (Chen et al. 2016) for raw audio.

    q(z|x): log-mel spectrogram of the crop -> 1-D convolutions over frames
        -> a global latent [latent_features] (mean over frames) and, optionally,
        a local latent sequence [ceil(crop / local_hop), local_latent_features]
    p(z): N(0, I) or the autoregressive-flow prior of `vlae.vae`
    p(x|z): the project's conditional WaveNet (`wavenet.model`), conditioned
        globally on the global latent and locally on the local sequence,
        predicting the crop's mu-law codes

The model is a `vlae.vae.VAE` whose data x is one training window: int32
mu-law codes [B, context + crop], where `context` is the decoder's receptive
field. The encoder reads only the crop (so z is computed from exactly the
audio the decoder reconstructs); the decoder reads the window teacher-forced
and scores the crop. Global and local latents travel as one flat vector
z: [B, latent_features + frames * local_latent_features], so the ELBO terms,
free bits, KL warm-up and the IWAE bound of `vlae.vae` apply unchanged.

The local sequence reaches the WaveNet at the sample rate (the WaveNet's
`local_hop` is 1, upsampling `repeat`): the prediction of crop sample j is
conditioned on local frame j // local_hop, in training and in sampling alike.
"""

import functools
import math
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from common.errors import InputError
from corpora import batching
from dsp import mulaw, spectral
from vlae import distributions
from vlae.vae import AutoregressiveFlowPrior, StandardNormalPrior, VAE
from wavenet.model import WaveNet

SAMPLE_RATE = 16000
PRIORS = ("standard_normal", "flow")
NUM_CLASSES = batching.NUM_CODES  # mu-law levels of the corpus codes and of the encoder's input
LOG_MEL_EPS = 1e-6  # added to the mel power before the encoder's log


def split_latent(z, latent_features, local_latent_features):
  """z: [B, latent_features + F * local] -> (global [B, latent_features], local [B, F, local] or None)."""
  if not local_latent_features:
    return z, None
  return z[:, :latent_features], z[:, latent_features:].reshape(z.shape[0], -1, local_latent_features)


def local_series(local, offset, length, hop):
  """Local latent frames at the sample rate: [B, F, C] -> [B, length, C].

  Position p gets frame clip((p + offset) // hop, 0, F - 1): with p the input
  position whose prediction is crop sample p + offset, every prediction sees
  the frame of the sample it predicts.
  """
  frame = jnp.clip((jnp.arange(length) + offset) // hop, 0, local.shape[1] - 1)
  return local[:, frame]


class LogMelEncoder(nn.Module):
  """q(z|x) from the crop of a window of mu-law codes."""
  context: int = 0  # codes before the crop (the decoder's receptive field), not encoded
  latent_features: int = 32  # dimensions of the global latent
  local_latent_features: int = 0  # channels of the local latent sequence; 0 = none
  local_hop: int = 1024  # samples per local latent frame, a multiple of `hop`
  channels: int = 64  # width of the convolutions over frames
  num_layers: int = 3  # convolutions over frames
  kernel_size: int = 3  # frames per convolution tap window
  n_fft: int = 1024  # STFT frame length, samples
  hop: int = 256  # STFT hop, samples
  num_mels: int = 80  # mel bands

  @property
  def min_samples(self):
    """The shortest crop the encoder reads: one STFT frame (and one local frame)."""
    return max(self.n_fft, self.local_hop if self.local_latent_features else 0)

  @nn.compact
  def __call__(self, window):
    """window: [B, context + T] int32 mu-law codes -> DiagonalGaussian, mean [B, latent_features + F * local].

    F = ceil(T / local_hop) local frames (0 without local latents); frame f
    summarises crop samples f * local_hop ... (f + 1) * local_hop - 1.
    """
    audio = mulaw.dequantize(window[:, self.context:])
    log_mel = spectral.log_mel(audio, SAMPLE_RATE, self.n_fft, self.hop, self.num_mels, LOG_MEL_EPS)
    features = nn.LayerNorm(name="input_norm")(log_mel)
    for layer in range(self.num_layers):
      features = nn.gelu(nn.Conv(self.channels, (self.kernel_size,), padding="SAME", name=f"conv_{layer}")(features))
    global_params = nn.Dense(2 * self.latent_features, name="global_posterior")(jnp.mean(features, axis=1))
    means, log_scales = [global_params[:, :self.latent_features]], [global_params[:, self.latent_features:]]
    if self.local_latent_features:
      frames_per_latent = self.local_hop // self.hop
      num_local = math.ceil(audio.shape[1] / self.local_hop)
      needed = num_local * frames_per_latent
      padded = jnp.pad(features, ((0, 0), (0, max(0, needed - features.shape[1])), (0, 0)), mode="edge")[:, :needed]
      pooled = padded.reshape(padded.shape[0], num_local, frames_per_latent, self.channels).mean(axis=2)
      local_params = nn.Dense(2 * self.local_latent_features, name="local_posterior")(pooled)
      batch = local_params.shape[0]
      means.append(local_params[..., :self.local_latent_features].reshape(batch, -1))
      log_scales.append(local_params[..., self.local_latent_features:].reshape(batch, -1))
    return distributions.DiagonalGaussian(mean=jnp.concatenate(means, axis=-1),
                                          log_scale=jnp.concatenate(log_scales, axis=-1))


@flax.struct.dataclass
class CropLikelihood:
  """p(crop | z) for windows: scores the codes after the first `context` of a window.

  crop_distribution: Categorical (logits [B, crop, num_classes]) or
    DiscretizedLogisticMixture (params [B, crop, 3M]) over the crop's codes.
  """
  crop_distribution: Any
  context: int = flax.struct.field(pytree_node=False, default=0)

  def log_prob(self, window):
    """window: [B, context + crop] int32 -> [B] nats, summed over the crop."""
    return self.crop_distribution.log_prob(window[..., self.context:])

  def sample(self, key):
    """[B, crop] int32 codes, each drawn given the true past (teacher forcing)."""
    return self.crop_distribution.sample(key)

  def mode(self):
    """[B, crop] int32 most probable code of each sample given the true past."""
    return self.crop_distribution.mode()


class WaveNetDecoder(nn.Module):
  """p(x|z): the conditional WaveNet, teacher-forced on the window."""
  wavenet: WaveNet  # conditioned globally on the global latent, locally (at the sample rate) on the local one
  latent_features: int = 32  # dimensions of the global latent, the first entries of z
  local_latent_features: int = 0  # channels of the local latent sequence, the rest of z; 0 = none
  local_hop: int = 1024  # samples per local latent frame

  def __call__(self, z, window):
    """z: [B, latent_features + F * local] float32, window: [B, context + crop] int32 -> CropLikelihood."""
    context = self.wavenet.receptive_field
    global_z, local = split_latent(z, self.latent_features, self.local_latent_features)
    inputs = window[:, :-1]
    series = None if local is None else local_series(local, 1 - context, inputs.shape[1], self.local_hop)
    head = self.wavenet(inputs, global_vector=global_z, local=series).head
    if self.wavenet.output_kind == "mixture":
      crop_distribution = distributions.DiscretizedLogisticMixture(head, self.wavenet.num_classes)
    else:
      crop_distribution = distributions.Categorical(head)
    return CropLikelihood(crop_distribution, context)


def build_vlae(model_config):
  """The audio VLAE (a `vlae.vae.VAE`) of a model config (dict or ConfigDict).

  Fields: latent_features, local_latent_features, local_hop, encoder (the
  LogMelEncoder fields channels, num_layers, kernel_size, n_fft, hop,
  num_mels), decoder (WaveNet fields; its global vector and local channels
  follow from the latents), prior (standard_normal | flow), flow_layers,
  flow_hidden_features.

  Raises:
    InputError: the config is not an audio VLAE's, names an unknown prior, or
      has a decoder whose num_classes is not the 256 mu-law levels of the data.
  """
  config = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
  if not isinstance(config.get("encoder"), dict) or not isinstance(config.get("decoder"), dict):
    raise InputError("not an audio VLAE config (it has no encoder and decoder); pass a checkpoint written by "
                     "experiments.train_vlae")
  if config["prior"] not in PRIORS:
    raise InputError(f"unknown prior {config['prior']!r}; known: {', '.join(PRIORS)}")
  if config["decoder"].get("num_classes", NUM_CLASSES) != NUM_CLASSES:
    raise InputError(f"decoder.num_classes is {config['decoder']['num_classes']}, but the corpus codes and the encoder "
                     f"use {NUM_CLASSES} mu-law levels; set decoder.num_classes={NUM_CLASSES}")
  latent, local, local_hop = config["latent_features"], config["local_latent_features"], config["local_hop"]
  if config["prior"] == "flow" and local:
    raise InputError("the flow prior models a fixed-length latent, but local latents grow with the clip; "
                     "set prior=standard_normal or local_latent_features=0")
  if local and local_hop % config["encoder"]["hop"]:
    raise InputError(f"local_hop {local_hop} must be a multiple of the encoder's STFT hop {config['encoder']['hop']}")
  wavenet = WaveNet(**dict(config["decoder"]), input_kernel_size=1, global_vector_channels=latent,
                    local_channels=local, local_hop=1, local_upsampling="repeat")
  encoder = LogMelEncoder(context=wavenet.receptive_field, latent_features=latent, local_latent_features=local,
                          local_hop=local_hop, **dict(config["encoder"]))
  if config["prior"] == "flow":
    prior = AutoregressiveFlowPrior(num_layers=config["flow_layers"], hidden_features=config["flow_hidden_features"])
  else:
    prior = StandardNormalPrior()
  return VAE(encoder=encoder, decoder=WaveNetDecoder(wavenet, latent, local, local_hop), prior=prior)


def context_of(model):
  """The decoder's receptive field: codes of context in front of every crop."""
  return model.decoder.wavenet.receptive_field


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_params(model, key, crop):
  """Fresh variables of `model` for windows of `crop` predicted samples (jitted; model and crop static)."""
  window = jnp.zeros((1, context_of(model) + crop), jnp.int32)
  return model.init(key, window, key)
