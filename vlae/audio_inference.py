"""Inference with a trained audio VLAE: load a checkpoint, encode clips to q(z|x), decode z to audio,
draw z from the prior; with the checks that make bad input one line.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from common.errors import InputError
from dsp import mulaw
from training.checkpoint import load_model_checkpoint
from vlae import distributions
from vlae.audio import build_vlae, context_of, local_series, SAMPLE_RATE, split_latent
from wavenet import sampling

SILENCE_PEAK = 1e-3  # clips whose peak |x| is below this are silent
DEFAULT_CHECKPOINT = "runs/vlae_small_fb"  # the CLIs' default run (not in the repo: train it first)
DEFAULT_CHECKPOINT_HELP = (f"audio-VLAE training workdir, its checkpoints folder or one step's folder (default "
                           f"{DEFAULT_CHECKPOINT}, not in the repo: train it first with python -m "
                           "experiments.train_vlae --config experiments/configs/vlae_voices.py:small --workdir "
                           f"{DEFAULT_CHECKPOINT})")


def load_vlae(path):
  """(model, params, labels) of the checkpoint `training.checkpoint.locate_checkpoint(path)` names.

  Raises:
    InputError: a missing checkpoint, or one of another model.
  """
  model_config, params, labels = load_model_checkpoint(path)
  try:
    model = build_vlae(model_config)
  except InputError:
    raise InputError(f"{path}: not an audio VLAE checkpoint; pass one written by experiments.train_vlae") from None
  return model, params, labels


def central_crop(clip, crop):
  """The `crop` central samples of `clip: [n]` (all of it when shorter): [min(n, crop)]."""
  start = max(0, (len(clip) - crop) // 2)
  return clip[start:start + crop]


def check_crop(model, crop):
  """Raises InputError unless crops of `crop` samples are long enough for the encoder."""
  if crop < model.encoder.min_samples:
    raise InputError(f"--crop {crop}: the encoder needs at least {model.encoder.min_samples} samples "
                     f"({model.encoder.min_samples / SAMPLE_RATE:.3f} s at {SAMPLE_RATE} Hz); pass a longer crop")


def check_clip(audio, model, name):
  """Raises InputError unless `audio: [n] float32` is long enough for the encoder and not silent."""
  needed = model.encoder.min_samples
  if audio.shape[-1] < needed:
    raise InputError(f"{name}: {audio.shape[-1]} samples ({audio.shape[-1] / SAMPLE_RATE:.3f} s) is shorter than "
                     f"the encoder needs ({needed} samples, {needed / SAMPLE_RATE:.3f} s at {SAMPLE_RATE} Hz); "
                     "pass a longer clip")
  if not np.max(np.abs(audio)) >= SILENCE_PEAK:
    raise InputError(f"{name}: the clip is silent (peak below {SILENCE_PEAK}); pass a clip with sound in it")


@functools.partial(jax.jit, static_argnames=("model",))
def _posterior(model, params, window):
  q = model.apply(params, window, method=lambda module, window: module.encoder(window))
  return q.mean, q.log_scale


def encode(model, params, audio):
  """q(z|x) of whole clips.

  Args:
    model: an audio VLAE.
    params: its variables.
    audio: [B, T] float32 in [-1, 1], T >= the encoder's min_samples.

  Returns:
    DiagonalGaussian with mean and log_scale [B, latent_features + F * local] float32.
  """
  codes = mulaw.quantize(np.asarray(audio, np.float32))
  window = np.pad(codes, ((0, 0), (context_of(model), 0)), constant_values=mulaw.quantize(np.float32(0.0)))
  mean, log_scale = _posterior(model, params, jnp.asarray(window, jnp.int32))
  return distributions.DiagonalGaussian(mean, log_scale)


def check_decode_length(model, z, num_samples):
  """Raises InputError if the local latent frames of z: [..., D] cover fewer than `num_samples` samples.

  Without the check, samples past the last frame would silently reuse it.
  """
  decoder = model.decoder
  if not decoder.local_latent_features:
    return
  frames = (z.shape[-1] - decoder.latent_features) // decoder.local_latent_features
  covered = frames * decoder.local_hop
  if num_samples > covered:
    raise InputError(f"{num_samples} samples ({num_samples / SAMPLE_RATE:.3f} s) to decode, but z holds {frames} local "
                     f"latent frames covering {covered} samples ({covered / SAMPLE_RATE:.3f} s); decode at most "
                     "that long (--seconds) or encode longer clips (--crop)")


def decode(model, params, z, num_samples, key, temperature=1.0):
  """Samples audio from p(x|z) with the incremental sampler (`wavenet.sampling`).

  Args:
    model: an audio VLAE.
    params: its variables.
    z: [B, latent_features + F * local] float32 latents.
    num_samples: N samples per stream (16 kHz).
    key: PRNG key; each stream draws from this same key, so streams that
      share z give the same audio and streams differ only through z.
    temperature: > 0, scales the logits.

  Returns:
    [B, N] float32 audio in [-1, 1].

  Raises:
    InputError: z has local latent frames covering fewer than N samples.
  """
  check_decode_length(model, z, num_samples)
  decoder = model.decoder
  wavenet = decoder.wavenet
  wavenet_params = {"params": params["params"]["decoder"]["wavenet"]}
  global_z, local = split_latent(jnp.asarray(z, jnp.float32), decoder.latent_features, decoder.local_latent_features)
  sampling.check_memory(wavenet, wavenet_params, 1, num_samples, num_samples,
                        host_bytes=4 * global_z.shape[0] * num_samples)  # one stream at a time; all clips kept
  clips = []
  for stream in range(global_z.shape[0]):
    series = None if local is None else local_series(local[stream:stream + 1], 0, num_samples, decoder.local_hop)
    conditioning = sampling.prepare_conditioning(wavenet, wavenet_params, 1, num_samples,
                                                 global_vector=global_z[stream:stream + 1], local=series)
    codes = sampling.sample(wavenet, wavenet_params, key, num_samples, conditioning, temperature=temperature)
    clips.append(np.asarray(mulaw.dequantize(np.asarray(codes[0]), wavenet.num_classes - 1)))
  return np.stack(clips)


def prior_draws(model, params, key, num, num_samples):
  """z ~ p(z) for clips of `num_samples`: [num, latent_features + F * local] float32."""
  decoder = model.decoder
  frames = math.ceil(num_samples / decoder.local_hop) if decoder.local_latent_features else 0
  noise = jax.random.normal(key, (num, decoder.latent_features + frames * decoder.local_latent_features))
  return np.asarray(model.apply(params, noise, method=lambda module, noise: module.prior.sample_from_noise(noise)))
