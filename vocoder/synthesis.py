"""Waveforms from frame features with a trained vocoder (WaveNet: incremental sampling; SourceFilter: one pass)."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

import dsp
from common.errors import InputError
from dsp import excitation as excitation_lib
from dsp import frames as frames_lib
from dsp import mulaw
from training import memory
from training.checkpoint import load_model_checkpoint
from vocoder import features as features_lib
from vocoder.source_filter import build_source_filter, SourceFilter
from wavenet import sampling
from wavenet.model import build_model


SHIPPED_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "vocoder")
MIN_SECONDS = 0.25  # shortest recording analysed: 25 frames
VOICED_TEMPERATURE = 0.7  # default softmax temperature of an autoregressive vocoder in voiced frames


def analyse_recording(path, sample_rate, flag="--input"):
  """(audio [n] float32, FrameFeatures) of an audio file, checked for copy synthesis.

  Any sample rate and channel count (resampled, channels averaged).

  Raises:
    InputError: unreadable, shorter than MIN_SECONDS, silent, without any
      voiced frame, or with non-finite features.
  """
  audio = dsp.load_audio(path, sample_rate)
  if len(audio) < MIN_SECONDS * sample_rate:
    raise InputError(f"{flag} {path}: {len(audio) / sample_rate:.3f} s long; give at least {MIN_SECONDS} s of audio")
  if dsp.active_fraction(audio, sample_rate) == 0.0:
    raise InputError(f"{flag} {path}: the recording is silent (no 25 ms frame above -40 dBFS); give one with speech")
  features = frames_lib.frame_features(audio, sample_rate)
  if not features.voiced.any():
    raise InputError(f"{flag} {path}: no voiced frame found (F0 cannot be tracked); give a recording of voiced speech")
  if not all(np.all(np.isfinite(array)) for array in features):
    raise InputError(f"{flag} {path}: its frame features are not finite; re-export the audio as PCM")
  return audio, features


def shift_pitch(features, semitones=0.0, f0_scale=1.0):
  """FrameFeatures with F0 multiplied by f0_scale * 2 ** (semitones / 12) (the envelope is kept)."""
  log_f0 = features.log_f0 + np.float32(np.log(f0_scale) + semitones * np.log(2.0) / 12.0)
  return features._replace(log_f0=log_f0.astype(np.float32))


def build_vocoder(model_config):
  """The vocoder of a model config: a SourceFilter (architecture "source_filter") or a WaveNet."""
  if dict(model_config).get("architecture") == "source_filter":
    return build_source_filter(model_config)
  return build_model(model_config)


def check_vocoder(model, path):
  """Raises InputError unless `model` takes the vocoder's conditioning."""
  if isinstance(model, SourceFilter):
    return
  if (model.local_channels != features_lib.LOCAL_CHANNELS or model.local_hop != 1
      or model.excitation_channels != excitation_lib.NUM_CHANNELS):
    raise InputError(f"{path}: not a vocoder checkpoint (it takes no frame features and excitation); "
                     "pass one written by experiments.train_vocoder")


def load_vocoder(path):
  """(model, params, labels) of a vocoder workdir or checkpoint folder; InputError for any other model."""
  model_config, params, labels = load_model_checkpoint(path)
  try:
    model = build_vocoder(model_config)
  except TypeError:
    raise InputError(f"{path}: not a WaveNet vocoder checkpoint; pass one written by experiments.train_vocoder") from None
  check_vocoder(model, path)
  return model, params, labels


def conditioning_arrays(clip_features, num_samples, sample_rate, aligned_phase=False):
  """Stacked sample-rate conditioning for sampling `num_samples` of each clip from its start.

  Step t of the sampler draws clip sample t, so the series cover samples
  0 ... num_samples (one more than drawn: the sampler's length P + N with a
  one-sample prime).

  Returns:
    (local [B, num_samples + 1, LOCAL_CHANNELS], excitation [B, num_samples + 1, 3]) float32.
  """
  pairs = [features_lib.window_conditioning(f, 0, num_samples + 1, sample_rate, aligned_phase)
           for f in clip_features]
  return np.stack([local for local, _ in pairs]), np.stack([source for _, source in pairs])


def vocode(model, params, clip_features, num_samples, key, sample_rate, speaker_ids=None, temperature=1.0,
           voiced_temperature=VOICED_TEMPERATURE, aligned_phase=False):
  """Synthesises `num_samples` of audio from each clip's frame features.

  Args:
    model, params: a vocoder (WaveNet or SourceFilter) and its variables.
    clip_features: B `dsp.frames.FrameFeatures` (each covering num_samples).
    num_samples: samples to draw per clip.
    key: PRNG key.
    sample_rate: Hz.
    speaker_ids: [B] int speaker ids, -1 (or None for all) = speaker absent.
    temperature: > 0, scales the logits in unvoiced frames (WaveNet only).
    voiced_temperature: > 0, scales them in voiced frames: the voicing-
      dependent sharpening of LPCNet and FFTNet (WaveNet only).
    aligned_phase: start each voiced frame's source at the recording's
      measured phase (teacher-forcing conditions) instead of integrating F0.

  Returns:
    [B, num_samples] float32 audio in [-1, 1].
  """
  batch = len(clip_features)
  check_memory(model, params, batch, num_samples)
  local, source = conditioning_arrays(clip_features, num_samples, sample_rate, aligned_phase)
  if isinstance(model, SourceFilter):
    noise = jax.random.normal(key, (batch, num_samples + 1))
    return np.asarray(_source_filter(model, params, jnp.asarray(local), jnp.asarray(source), noise)[:, :num_samples],
                      np.float32)
  ids = np.full(batch, -1, np.int32) if speaker_ids is None else np.asarray(speaker_ids, np.int32)
  global_ids = {"speaker": jnp.asarray(ids)} if dict(model.global_categories).get("speaker") else None
  conditioning = sampling.prepare_conditioning(model, params, batch, num_samples + 1, global_ids,
                                               local=jnp.asarray(local), excitation=jnp.asarray(source))
  voiced = local[:, :num_samples, 1]  # Step t draws clip sample t; channel 1 is the voicing.
  temperatures = np.where(voiced > 0.5, voiced_temperature, temperature).astype(np.float32)
  codes = sampling.sample(model, params, key, num_samples, conditioning, temperature=jnp.asarray(temperatures))
  return np.asarray(mulaw.dequantize(jax.device_get(codes), model.num_classes - 1), np.float32)



def check_memory(model, params, batch, num_samples):
  """Refuses, before any array is built, vocoding `batch` clips of `num_samples` that would not fit in memory.

  Counts the sample-rate conditioning `conditioning_arrays` holds on the host
  (float32 frame vectors and excitation for every sample) besides what XLA
  says the program needs (`wavenet.sampling.check_memory`).

  Raises:
    InputError: one line with the estimate and the free memory.
  """
  length = num_samples + 1
  host_bytes = 4 * batch * length * (features_lib.LOCAL_CHANNELS + excitation_lib.NUM_CHANNELS)
  if not isinstance(model, SourceFilter):
    sampling.check_memory(model, params, batch, num_samples, length, step_temperatures=True,
                          host_bytes=host_bytes + 4 * batch * num_samples)
    return
  def floats(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)
  memory.compile_within_memory(
      _source_filter, (model, params, floats(batch, length, features_lib.LOCAL_CHANNELS),
                       floats(batch, length, excitation_lib.NUM_CHANNELS), floats(batch, length)),
      f"vocoding {batch} clip(s) of {num_samples:,} samples", "ask for fewer clips or fewer seconds",
      host_bytes=host_bytes)


@functools.partial(jax.jit, static_argnums=0)
def _source_filter(model, params, local, source, noise):
  return model.apply(params, local, source, noise)
