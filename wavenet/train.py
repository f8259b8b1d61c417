"""Training a conditional WaveNet on a corpus with the shared loop."""

import itertools

import jax.numpy as jnp
import numpy as np

import corpora
from common.errors import InputError
from corpora import batching
from training.loop import train
from wavenet import loss as loss_lib
from wavenet.model import build_model


def global_names(model):
  """Batch keys used as categorical global conditioning, e.g. ("speaker", "gender")."""
  return tuple(name for name, _ in model.global_categories)


def _select(batch, names):
  return {name: batch[name] for name in ("codes", "weight", *names) if name in batch}


def drop_speakers(batch, probability, seed, step):
  """Marks each window's speaker absent (-1) with `probability`, a pure function of (seed, step).

  Trained so, the model also samples from gender alone (speaker absent).
  """
  if probability <= 0 or "speaker" not in batch:
    return batch
  dropped = np.random.default_rng([seed, step, 1]).random(len(batch["speaker"])) < probability
  return dict(batch, speaker=np.where(dropped, -1, batch["speaker"]).astype(np.int32))


def train_and_evaluate(config, workdir):
  """Trains `config.model` on `config.data` into `workdir`, resuming if it holds a checkpoint.

  Args:
    config: ConfigDict with `model` (WaveNet fields), `data` (corpus name,
      config, data_dir, batch_size, crop, eval_batches, speaker_dropout) and
      `train` (see
      `training.loop.train`).
    workdir: run directory.

  Returns:
    The final TrainState.
  """
  if config.model.num_classes != batching.NUM_CODES:
    raise InputError(f"model.num_classes is {config.model.num_classes}, but the corpus codes have "
                     f"{batching.NUM_CODES} mu-law levels; set model.num_classes={batching.NUM_CODES}")
  model = build_model(config.model)
  names = global_names(model)
  data = config.data
  train_clips = batching.preload(corpora.load_split(data.name, data.config, "train", data.data_dir))
  validation_clips = batching.preload(corpora.load_split(data.name, data.config, "validation", data.data_dir))
  context = model.receptive_field

  def train_batch(step):
    batch = batching.train_batch(train_clips, config.train.seed, step, data.batch_size, context, data.crop)
    return drop_speakers(_select(batch, names), data.speaker_dropout, config.train.seed, step)

  def eval_batches():
    windows = batching.eval_batches(validation_clips, data.batch_size, context, data.crop)
    return [_select(batch, names) for batch in itertools.islice(windows, data.eval_batches)]

  return train(workdir=workdir, model_config=config.model.to_dict(),
               init_params=lambda key: model.init(key, jnp.zeros((1, context + 1), jnp.int32)),
               loss_fn=loss_lib.make_loss_fn(model, names), train_batch=train_batch, eval_batches=eval_batches,
               train_config=config.train, samples_per_batch=data.batch_size * data.crop,
               batch_size=data.batch_size,
               labels=batching.speaker_labels(data.name, data.config, train_clips, data.data_dir))
