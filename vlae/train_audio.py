"""Training the audio VLAE on a voices corpus with the shared loop (its evaluation: `vlae.audio_evaluation`).

Training windows are random crops (`corpora.batching.train_batch`) with the
decoder's receptive field of context in front; the objective per predicted
sample is (-log p(crop|z) + beta * KL with free bits) / crop. Validation and
evaluation use one central crop per utterance and score the plain negative
ELBO, reported in bits per sample.
"""

import math

import jax.numpy as jnp
import numpy as np

import corpora
from corpora import batching, packed
from training.loop import train
from vlae import audio, probe
from vlae.vae import vae_loss


def make_loss_fn(model, crop, kl_warmup_steps, free_bits):
  """`(params, batch, key, *, step, train) -> (nats per predicted sample, metrics)` for the shared loop.

  The batch holds `codes: [B, context + crop] int32` windows and, in
  evaluation, `weight: [B]` (0 for padding rows). Training scores the
  objective (the KL warm-up weight set by `step`, free bits); evaluation
  scores the negative ELBO at full KL weight, averaged over the rows of
  weight 1.
  """
  def loss_fn(params, batch, key, *, step, train):
    loss = vae_loss(model, params, batch["codes"], key, step if train else kl_warmup_steps, kl_warmup_steps,
                    free_bits)
    weight = batch.get("weight", jnp.ones_like(loss.elbo))

    def mean(values):
      return jnp.sum(values * weight) / jnp.sum(weight)

    metrics = {"negative_elbo_bits_per_sample": -mean(loss.elbo) / (crop * math.log(2.0)),
               "reconstruction_bits_per_sample": -mean(loss.reconstruction) / (crop * math.log(2.0)),
               "kl_bits_per_clip": mean(loss.kl) / math.log(2.0),
               "kl_free_bits_nats": loss.kl_free_bits, "beta": loss.beta}
    objective = loss.objective if train else -mean(loss.elbo)
    return objective / crop, metrics
  return loss_fn


def validation_batches(windows, batch_size):
  """Evaluation batches of windows [N, W]: codes and weight [B] (0 for padding rows)."""
  for rows, weight in packed.padded_rows(len(windows), batch_size):
    yield {"codes": windows[rows], "weight": weight}


def train_and_evaluate(config, workdir):
  """Trains the audio VLAE of `config` into `workdir`, resuming if it holds a checkpoint.

  Args:
    config: ConfigDict with `model` (see `audio.build_vlae`), `data` (name,
      config, data_dir, batch_size, crop, eval_batches), `objective`
      (kl_warmup_steps, free_bits in nats per latent element) and `train` (see
      `training.loop.train`).
    workdir: run directory.

  Returns:
    The final TrainState.
  """
  model = audio.build_vlae(config.model)
  data, objective = config.data, config.objective
  context = audio.context_of(model)
  train_clips = batching.preload(corpora.load_split(data.name, data.config, "train", data.data_dir))
  validation_clips = batching.preload(corpora.load_split(data.name, data.config, "validation", data.data_dir))
  validation_windows = probe.central_windows(validation_clips, context, data.crop)
  chosen = np.sort(np.random.default_rng(config.train.seed).permutation(len(validation_windows))[
      :data.eval_batches * data.batch_size])

  def train_batch(step):
    batch = batching.train_batch(train_clips, config.train.seed, step, data.batch_size, context, data.crop)
    return {"codes": batch["codes"]}

  def eval_batches():
    return validation_batches(validation_windows[chosen], data.batch_size)

  labels = dict(batching.speaker_labels(data.name, data.config, train_clips, data.data_dir),
                corpus={"name": data.name, "config": data.config}, training_crop=data.crop)
  return train(workdir=workdir, model_config=config.model.to_dict(),
               init_params=lambda key: audio.init_params(model, key, data.crop),
               loss_fn=make_loss_fn(model, data.crop, objective.kl_warmup_steps, objective.free_bits),
               train_batch=train_batch, eval_batches=eval_batches, train_config=config.train,
               samples_per_batch=data.batch_size * data.crop, batch_size=data.batch_size, labels=labels)
