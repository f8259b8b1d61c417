"""Training the WaveNet vocoder with the shared loop.

Each window of `context + crop` samples comes with its conditioning at the
sample rate (`vocoder.features.window_conditioning`, the source in phase with
the recording). The network's inputs may carry noise (LPCNet's remedy for
exposure bias: the targets stay clean, the inputs are perturbed by a few mu-law
levels) so that synthesis survives its own sampling errors. At every
evaluation, a few clips are also synthesised free-running from their features
alone and scored by pYIN against the originals: the teacher-forced loss does
not show whether the network follows its source.
"""

import jax
import jax.numpy as jnp
import numpy as np

import corpora
from common.errors import InputError
from corpora import batching, packed
from corpora.schema import SAMPLE_RATE
from training.loop import train
from vocoder import features as features_lib
from vocoder import metrics as metrics_lib
from vocoder import source_filter, synthesis
from wavenet import loss as loss_lib
from wavenet.train import drop_speakers


def _conditioned_windows(clips, split_frames, clip, end, context, crop, autoregressive):
  """Batch of the windows ending at `end` of clips `clip`, with their conditioning.

  Autoregressive (WaveNet): codes [B, T], T = context + crop, and conditioning
  for the T - 1 network inputs, the source in phase with the recording.
  Otherwise (SourceFilter): audio [B, crop] and conditioning for those
  samples, the source integrated from F0 as in synthesis.
  """
  batch = batching.windows(clips, clip, end, context, crop)
  length = context + crop
  start, count = (1 - length, length - 1) if autoregressive else (-crop, crop)
  pairs = [features_lib.window_conditioning(split_frames.clip(c), e + start, count, SAMPLE_RATE,
                                            aligned_phase=autoregressive)
           for c, e in zip(clip.tolist(), end.tolist())]
  out = {"speaker": batch["speaker"], "local": np.stack([local for local, _ in pairs]),
         "excitation": np.stack([s for _, s in pairs])}
  if autoregressive:
    out["codes"] = batch["codes"]
  else:
    out["audio"] = batch["audio"][:, context:]
  return out


def noisy_inputs(codes, noise_levels, rng):
  """Codes [B, T] plus Gaussian noise of `noise_levels` mu-law levels (std), rounded and clipped."""
  if noise_levels <= 0:
    return codes
  noise = np.rint(rng.normal(0.0, noise_levels, codes.shape)).astype(np.int32)
  return np.clip(codes + noise, 0, batching.NUM_CODES - 1).astype(np.int32)


def make_loss_fn(model):
  """`(params, batch, key, *, step, train) -> (mean nats per sample, {})`; the batch holds inputs, codes,
  speaker, local, excitation and optionally weight [B] (0 for padding rows)."""
  def loss_fn(params, batch, key, *, step, train):
    del key, step, train
    log_probs = loss_lib.log_probs(model, params, batch["inputs"], batch["codes"], {"speaker": batch["speaker"]},
                                   local=batch["local"], excitation=batch["excitation"])
    per_window = -log_probs.mean(axis=-1)
    weight = batch.get("weight", jnp.ones_like(per_window))
    return jnp.sum(per_window * weight) / jnp.sum(weight), {}
  return loss_fn


def monitor_clips(clips, count, seconds):
  """Indices of `count` clips spread over a split, each at least `seconds` long (fewer if too few are)."""
  long_enough = np.flatnonzero(clips.lengths >= seconds * SAMPLE_RATE)
  if not len(long_enough):
    return long_enough
  return long_enough[np.unique(np.linspace(0, len(long_enough) - 1, count).round().astype(int))]


def make_free_running_check(model, sets, seconds, seed):
  """`(params, step) -> metrics` of free-running copy synthesis of the first `seconds` of some clips.

  Args:
    sets: {name: (Clips, SplitFrames, clip indices, speaker ids)}; metrics
      are averaged per set and named `free_{name}_{metric}`.
  """
  num_samples = int(seconds * SAMPLE_RATE)

  def check(params, step):
    out = {}
    for name, (clips, split_frames, chosen, speaker_ids) in sets.items():
      if not len(chosen):
        continue
      features = [split_frames.clip(i) for i in chosen]
      audio = synthesis.vocode(model, params, features, num_samples, jax.random.key(seed + step), SAMPLE_RATE,
                               speaker_ids)
      scores = [metrics_lib.pitch_errors(clips.clip(i)[:num_samples], audio[k], SAMPLE_RATE)
                for k, i in enumerate(chosen)]
      for metric in ("vuv_error_pct", "gross_pitch_error_pct", "output_voiced_pct"):
        values = [s[metric] for s in scores if np.isfinite(s[metric])]
        if values:  # The gross pitch error is undefined when no frame is voiced in both.
          out[f"free_{name}_{metric}"] = float(np.mean(values))
    return out
  return check


def train_and_evaluate(config, workdir):
  """Trains the vocoder of `config` into `workdir`, resuming from its last checkpoint.

  Args:
    config: ConfigDict with `model` (WaveNet fields with the vocoder's local
      and excitation channels), `data` (corpus, batch_size, crop,
      eval_batches, speaker_dropout, input_noise_levels, monitor_clips,
      monitor_seconds) and `train` (see `training.loop.train`).
    workdir: run directory.

  Returns:
    The final TrainState.
  """
  model = synthesis.build_vocoder(config.model)
  synthesis.check_vocoder(model, "config.model")
  autoregressive = not isinstance(model, source_filter.SourceFilter)
  data = config.data
  seed = config.train.seed

  def split(name):
    clips = batching.preload(corpora.load_split(data.name, data.config, name, data.data_dir))
    return clips, features_lib.load_split_frames(data.name, data.config, name, clips, SAMPLE_RATE, data.data_dir)

  train_clips, train_frames = split("train")
  validation_clips, validation_frames = split("validation")
  heldout_clips, heldout_frames = split("heldout_speakers")
  context = model.receptive_field if autoregressive else 0
  if data.crop < 1:
    raise InputError(f"data.crop is {data.crop}; it must be at least 1")

  def train_batch(step):
    clip, end = batching.train_windows(train_clips, seed, step, data.batch_size, data.crop)
    batch = _conditioned_windows(train_clips, train_frames, clip, end, context, data.crop, autoregressive)
    if not autoregressive:
      return batch
    batch["inputs"] = noisy_inputs(batch["codes"], data.input_noise_levels, np.random.default_rng([seed, step, 2]))
    return drop_speakers(batch, data.speaker_dropout, seed, step)

  eval_clip, eval_end = batching.eval_windows(validation_clips, data.crop)
  eval_rows = np.unique(np.linspace(0, len(eval_clip) - 1, data.batch_size * data.eval_batches).round().astype(int))

  def eval_batches():
    for rows, weight in packed.padded_rows(len(eval_rows), data.batch_size):
      chosen = eval_rows[rows]
      batch = _conditioned_windows(validation_clips, validation_frames, eval_clip[chosen], eval_end[chosen],
                                   context, data.crop, autoregressive)
      yield dict(batch, weight=weight, **({"inputs": batch["codes"]} if autoregressive else {}))

  def monitor_set(clips, split_frames, speaker_known):
    chosen = monitor_clips(clips, data.monitor_clips, data.monitor_seconds)
    ids = clips.speaker[chosen] if speaker_known else np.full(len(chosen), -1, np.int32)
    return clips, split_frames, chosen, ids

  check = make_free_running_check(model, {
      "validation": monitor_set(validation_clips, validation_frames, True),
      "heldout": monitor_set(heldout_clips, heldout_frames, False)}, data.monitor_seconds, seed)
  return train(workdir=workdir, model_config=config.model.to_dict(),
               init_params=lambda key: _init_params(model, key, context + data.crop, autoregressive),
               loss_fn=make_loss_fn(model) if autoregressive else source_filter.make_loss_fn(model),
               train_batch=train_batch, eval_batches=eval_batches, loss_unit="sample" if autoregressive else "window",
               train_config=config.train, samples_per_batch=data.batch_size * data.crop,
               batch_size=data.batch_size,
               labels=batching.speaker_labels(data.name, data.config, train_clips, data.data_dir),
               extra_eval=check if data.monitor_clips else None)


def _init_params(model, key, length, autoregressive):
  local = jnp.zeros((1, length - 1, features_lib.LOCAL_CHANNELS))
  excitation = jnp.zeros((1, length - 1, 3))
  if not autoregressive:
    return model.init(key, local, excitation, jnp.zeros((1, length - 1)))
  return model.init(key, jnp.zeros((1, length - 1), jnp.int32), {"speaker": jnp.zeros((1,), jnp.int32)},
                    local=local, excitation=excitation)
