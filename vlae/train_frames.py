"""Training the frame-rate VLAE with the shared loop on the cached frame features of a corpus."""

import jax.numpy as jnp
import numpy as np

from corpora import batching
from corpora.schema import SAMPLE_RATE
from dsp import frames as frames_lib
from frameprior.train import frame_windows, load_frames, validation_windows
from training.loop import train
from vlae import band_fill, frame_vlae
from vocoder import features as features_lib


def shift_pitch(frames, rng, semitones):
  """Frame vectors [B, T, C] with each window's log-F0 shifted by a uniform draw in +-`semitones`.

  Fourteen training voices give fourteen pitch levels; shifting each window
  as a whole makes pitch level a continuous factor that z must carry (the
  decoder has to reproduce it), for voices the encoder never heard.
  """
  if semitones <= 0:
    return frames
  shift = rng.uniform(-semitones, semitones, frames.shape[0]) * np.log(2.0) / 12.0 / features_lib.LOG_F0_SCALE
  frames = frames.copy()
  frames[..., 0] += shift[:, None].astype(np.float32)
  return frames


def limit_band(frames, rng, share, cutoff_range_hz, sample_rate=SAMPLE_RATE):
  """Frame vectors [B, T, C] with, in a `share` of the windows, every log-mel band centred above a cutoff drawn
  uniformly from `cutoff_range_hz` set to silence.

  That is what a recording sampled at twice the cutoff gives (telephone audio,
  flite's 8 kHz voices): a held-out male voice low-passed at 4 kHz decodes
  7-9% higher than at full band. Off by default: trained with it, the one
  8 kHz voice's end lands but the others drift high (docs/vae_vlae.md).
  """
  if share <= 0:
    return frames
  limited = rng.random(frames.shape[0]) < share
  cutoff = rng.uniform(*cutoff_range_hz, frames.shape[0])
  silenced = limited[:, None] & (frames_lib.mel_band_centres(sample_rate)[None, :] > cutoff[:, None])  # [B, bands]
  bands = slice(features_lib.FIRST_MEL_CHANNEL, None)
  silent_bands = features_lib.silent_vectors(1, features_lib.LOG_F0_CENTRE)[0, bands]  # [bands]
  frames = frames.copy()
  frames[..., bands] = np.where(silenced[:, None, :], silent_bands, frames[..., bands])
  return frames


def make_loss_fn(model, free_bits):
  """`(params, batch, key, *, step, train) -> (-ELBO nats per frame, metrics)`: free bits in training only.

  The batch holds frames [B, T, C], mask [B, T] and, in evaluation, weight [B].
  """
  def loss_fn(params, batch, key, *, step, train):
    del step
    evaluating = not train
    out = model.apply(params, batch["frames"], batch["mask"], key, 0.0 if evaluating else free_bits)
    weight = batch.get("weight", jnp.ones_like(out.kl))
    frames = jnp.sum(out.frames * weight)
    objective = out.reconstruction - (out.kl if evaluating else out.kl_free_bits)
    nats = -jnp.sum(objective * weight) / frames
    mean = lambda x: jnp.sum(x * weight) / jnp.sum(weight)
    return nats, {"kl_bits_per_window": mean(out.kl) / jnp.log(2.0),
                  "reconstruction_nats_per_frame": -jnp.sum(out.reconstruction * weight) / frames}
  return loss_fn


def train_and_evaluate(config, workdir):
  """Trains the frame VLAE of `config` into `workdir`, resuming from its last checkpoint."""
  model = frame_vlae.build_frame_vlae(config.model)
  data, seed = config.data, config.train.seed
  train_clips, train_frames, train_vectors = load_frames(data, "train")
  validation = load_frames(data, "validation")
  frames_only = lambda batch: {k: v for k, v in batch.items() if k in ("frames", "mask", "weight")}

  def train_batch(step):
    rng = np.random.default_rng([seed, step])
    batch = frame_windows(train_vectors, train_frames.starts, train_frames.counts, train_clips.speaker,
                          train_clips.gender, rng, data.batch_size, data.frames)
    frames = shift_pitch(batch["frames"], rng, data.pitch_shift_semitones)
    return frames_only(dict(batch, frames=limit_band(frames, rng, data.band_limit_share, data.band_limit_hz)))

  def eval_batches():
    return map(frames_only, validation_windows(validation, seed, data.eval_batches, data.batch_size, data.frames))

  zeros = jnp.zeros((1, data.frames, model.frame_channels))
  return train(workdir=workdir, model_config=config.model.to_dict(),
               init_params=lambda key: model.init(key, zeros, jnp.ones((1, data.frames)), key),
               loss_fn=make_loss_fn(model, data.free_bits),
               train_batch=train_batch, eval_batches=eval_batches,
               train_config=config.train, samples_per_batch=data.batch_size * data.frames,
               batch_size=data.batch_size, loss_unit="frame",
               labels=dict(batching.speaker_labels(data.name, data.config, train_clips, data.data_dir),
                           corpus={"name": data.name, "config": data.config},
                           band_statistics=band_fill.fit(train_vectors)))
