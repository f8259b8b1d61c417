"""Inference with a trained frame-rate VLAE: load a checkpoint, encode utterances' frame features to
posterior means, decode z to frame features (phrases with pauses, as garble does) for the vocoder.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from common.errors import InputError
from corpora.schema import SAMPLE_RATE
from dsp import frames as frames_lib
from frameprior import model as prior_lib
from training.checkpoint import load_model_checkpoint
from vlae import band_fill
from vlae.frame_vlae import build_frame_vlae, decoder_of, FrameVlae
from vocoder import features as features_lib


def load_frame_vlae(path):
  """(model, params, labels) of a frame VLAE checkpoint; InputError for any other model."""
  model_config, params, labels = load_model_checkpoint(path)
  if model_config.get("architecture") != "frame_vlae":
    raise InputError(f"{path}: not a frame-rate VLAE checkpoint; give one written by experiments.train_frame_vlae")
  return build_frame_vlae(model_config), params, labels


def decode(model, params, z, num_frames, key, temperature=1.0):
  """Frame vectors [B, num_frames, C] drawn from the decoder given z [B, Z], with its training input dropout."""
  decoder = decoder_of(model)
  absent = jnp.full((z.shape[0],), -1, jnp.int32)
  decoder_params = jax.tree.map(jnp.asarray, {"params": params["params"]["decoder"]})
  return prior_lib.sample(decoder, decoder_params, key, num_frames, absent, absent,
                          temperature, latent=z, input_dropout=model.decoder_input_dropout)


def encode_features(model, params, clip_features, batch_size=64):
  """Posterior means [n, Z] of n utterances' `dsp.frames.FrameFeatures`, `batch_size` at a time (`encode_vectors`)."""
  return encode_vectors(model, params, [features_lib.frame_vectors(f) for f in clip_features], batch_size)


class EncodedRecording(NamedTuple):
  """A recording's posterior mean and what its band limit did to the encoder's input."""
  mean: np.ndarray  # [Z] posterior mean
  bandwidth_hz: float  # `dsp.frames.bandwidth_hz` of the recording
  observed_bands: int  # log-mel bands it holds (`dsp.frames.observed_bands`); NUM_MELS at full band
  filled: bool  # whether the other bands were filled in (`vlae.band_fill`) before encoding


def encode_recording(model, params, labels, audio, features):
  """The `EncodedRecording` of one recording [n] at SAMPLE_RATE and its `dsp.frames.FrameFeatures`.

  The bands above a band-limited recording's bandwidth are filled in from the
  others (`vlae.band_fill`) when the checkpoint's labels carry the training
  frames' "band_statistics"; a full-band recording is encoded as it is.
  """
  vectors = features_lib.frame_vectors(features)
  bandwidth = frames_lib.bandwidth_hz(audio, SAMPLE_RATE)
  observed = frames_lib.observed_bands(bandwidth, SAMPLE_RATE)
  filled = observed < frames_lib.NUM_MELS and "band_statistics" in labels
  if filled:
    vectors = band_fill.fill(vectors, observed, labels["band_statistics"])
  return EncodedRecording(encode_vectors(model, params, [vectors])[0], bandwidth, observed, filled)


def encode_vectors(model, params, vectors, batch_size=64):
  """Posterior means [n, Z] of n utterances' frame vectors [F_i, C], `batch_size` at a time.

  A batch of several is padded to a multiple of 100 frames (masked), so a
  whole split compiles to a few programs; a single utterance is encoded
  unpadded, exactly as long as it is.
  """
  encode = jax.jit(lambda vectors, mask: model.apply(params, vectors, mask, method=FrameVlae.encode)[0])
  means = []
  for first in range(0, len(vectors), batch_size):
    chunk = vectors[first:first + batch_size]
    longest = max(len(v) for v in chunk)
    length = longest if len(chunk) == 1 else -(-longest // 100) * 100
    padded = np.zeros((len(chunk), length, chunk[0].shape[1]), np.float32)
    mask = np.zeros((len(chunk), length), np.float32)
    for row, v in enumerate(chunk):
      padded[row, :len(v)], mask[row, :len(v)] = v, 1.0
    means.append(np.asarray(encode(padded, mask)))
  return np.concatenate(means)


def decode_to_features(model, params, path, num_frames, key, temperature, phrase_frames, pause_frames):
  """For each z of `path` [S, Z], frame features of `num_frames` frames: phrases of the decoder with pauses.

  Every step uses the same key, so only z changes along the path. Returns S FrameFeatures.
  """
  phrases = -(-num_frames // (phrase_frames + pause_frames))

  def phrases_of(z):  # [Z] -> [phrases, phrase_frames, C], the same noise for every step
    return decode(model, params, jnp.broadcast_to(z, (phrases, z.shape[0])), phrase_frames, key, temperature)

  drawn = np.asarray(jax.jit(jax.vmap(phrases_of))(jnp.asarray(path, jnp.float32)))
  out = []
  for step in drawn:
    parts = []
    for part in step:
      log_f0 = part[-1, 0] * features_lib.LOG_F0_SCALE + features_lib.LOG_F0_CENTRE
      parts += [part, features_lib.silent_vectors(pause_frames, log_f0)]
    out.append(features_lib.features_from_vectors(np.concatenate(parts)[:num_frames]))
  return out
