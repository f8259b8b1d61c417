"""Evaluation of a trained audio VLAE (its table row: validation ELBO, KL and linear probes of z) and the
mean posterior of each gender.
"""

import functools
import math
import os

import jax
import numpy as np
from tqdm import tqdm

import corpora
from common.files import save_json
from corpora import batching
from training.checkpoint import locate_checkpoint
from vlae import audio, audio_inference, probe
from vlae.train_audio import make_loss_fn, validation_batches

EVAL_FILE = "eval.json"  # at the training crop; at another crop N, eval_cropN.json
UNTRAINED_EVAL_FILE = "eval_untrained.json"
# Samples per crop of checkpoints saved before the training crop went into their labels: the crop of every
# vlae_voices variant but smoke.
LEGACY_TRAINING_CROP = 8000


def training_crop(labels):
  """Samples per training crop of a run, from its checkpoint's labels (LEGACY_TRAINING_CROP if they predate it)."""
  return int(labels.get("training_crop", LEGACY_TRAINING_CROP))


def _split_clips(name, config, split, data_dir):
  return batching.preload(corpora.load_split(name, config, split, data_dir))


def evaluate(path, crop=None, batch_size=8, data_dir=None, seed=0, untrained=False):
  """The table row of a trained audio VLAE, also written to `WORKDIR/eval.json` (see `EVAL_FILE`).

  Validation: the negative ELBO (bits per sample) and the KL (bits per clip)
  over one central crop of every validation utterance. Probes, on posterior
  means of the global latent of one central crop per utterance: gender and
  speaker fit on the train split and scored on the test split (held-out
  utterances); gender of the `heldout_speakers` split with the same gender
  probe (unseen speakers); speaker within `heldout_speakers` by 5-fold
  cross-validation (a probe fit on some of their utterances, scored on the rest).
  Shows a tqdm bar over the batches.

  Args:
    path: the run's workdir, its checkpoints folder or one step's folder (see
      `training.checkpoint.locate_checkpoint`); the workdir's newest step, or that step, is
      evaluated, and the JSON goes into the workdir.
    crop: samples per crop; None: the run's training crop (`training_crop`).
    batch_size: windows per forward pass.
    data_dir: corpus data dir override.
    seed: PRNG seed of the z draws of the ELBO.
    untrained: evaluate the run's model at its initial parameters instead (a
      baseline: what the probes find in an encoder that never trained),
      written to `WORKDIR/eval_untrained.json`.

  Returns:
    A dict of the metrics.
  """
  workdir, step_folder, step = locate_checkpoint(path)
  model, params, labels = audio_inference.load_vlae(step_folder)
  crop = training_crop(labels) if crop is None else crop
  audio_inference.check_crop(model, crop)
  if untrained:
    params = audio.init_params(model, jax.random.key(seed), crop)
  name, corpus_config = labels["corpus"]["name"], labels["corpus"]["config"]
  context = audio.context_of(model)
  latent_features = model.decoder.latent_features
  loss_fn = jax.jit(functools.partial(make_loss_fn(model, crop, 0, 0.0), step=0, train=False))
  clips = {split: _split_clips(name, corpus_config, split, data_dir)
           for split in ("validation", "train", "test", "heldout_speakers")}
  windows = {split: probe.central_windows(split_clips, context, crop) for split, split_clips in clips.items()}
  total_batches = sum(math.ceil(len(split_windows) / batch_size) for split_windows in windows.values())
  relative = os.path.relpath(workdir)
  shown = path if os.path.abspath(path) == workdir else (workdir if relative.startswith("..") else relative)
  elbo_sum, kl_sum, reconstruction_sum = 0.0, 0.0, 0.0
  features = {}
  with tqdm(total=total_batches, desc=f"eval {shown}", unit="batch") as progress:
    for index, batch in enumerate(validation_batches(windows["validation"], batch_size)):
      _, metrics = jax.device_get(loss_fn(params, batch, jax.random.fold_in(jax.random.key(seed), index)))
      rows = float(batch["weight"].sum())
      elbo_sum += rows * float(metrics["negative_elbo_bits_per_sample"])
      kl_sum += rows * float(metrics["kl_bits_per_clip"])
      reconstruction_sum += rows * float(metrics["reconstruction_bits_per_sample"])
      progress.update(1)
    for split in ("train", "test", "heldout_speakers"):
      features[split] = probe.posterior_means(model, params, windows[split], batch_size, progress)[:, :latent_features]
  speakers = {split: split_clips.speaker for split, split_clips in clips.items()}
  genders = {split: split_clips.gender for split, split_clips in clips.items()}
  validation_count = len(windows["validation"])
  result = {
      "workdir": shown, "step": 0 if untrained else step, "receptive_field": context, "crop": crop,
      "validation_utterances": validation_count,
      "validation_bits_per_sample": elbo_sum / validation_count,
      "validation_reconstruction_bits_per_sample": reconstruction_sum / validation_count,
      "validation_kl_bits_per_clip": kl_sum / validation_count,
      "gender_probe_test": probe.probe_accuracy(features["train"], genders["train"], features["test"],
                                                genders["test"]),
      "speaker_probe_test": probe.probe_accuracy(features["train"], speakers["train"], features["test"],
                                                 speakers["test"]),
      "gender_probe_heldout_speakers": probe.probe_accuracy(features["train"], genders["train"],
                                                            features["heldout_speakers"], genders["heldout_speakers"]),
      "speaker_probe_heldout_speakers": probe.cross_validated_accuracy(features["heldout_speakers"],
                                                                       speakers["heldout_speakers"]),
  }
  file_name = UNTRAINED_EVAL_FILE if untrained else EVAL_FILE
  if crop != training_crop(labels):
    file_name = file_name.replace(".json", f"_crop{crop}.json")
  save_json(os.path.join(workdir, file_name), result)
  return result


def gender_means(model, params, labels, crop, batch_size, data_dir=None, split="train"):
  """{gender name: [latent_features + F * local] mean of the posterior means of its utterances in `split`}.

  Each utterance contributes its central crop of `crop` samples.
  """
  clips = _split_clips(labels["corpus"]["name"], labels["corpus"]["config"], split, data_dir)
  means = probe.posterior_means(model, params, probe.central_windows(clips, audio.context_of(model), crop), batch_size)
  return {gender: means[clips.gender == index].mean(axis=0) for index, gender in enumerate(labels["gender"])
          if np.any(clips.gender == index)}
