"""Training a tagger on a tagged corpus with the shared loop (binary cross-entropy per tag)."""

import jax
import jax.numpy as jnp
import optax

import corpora
from common.errors import InputError
from corpora import tagging
from tagger.model import build_model
from training.loop import train


def make_loss_fn(model, flip_polarity=False):
  """`(params, batch, key, *, step, train) -> (mean binary cross-entropy in nats per tag, metrics)`.

  `batch` holds audio [b, n] float32 and tags [b, n_tags] float32, and
  optionally weight [b] float32 (0 for padding rows). In training the model
  runs with dropout (from `key`) and, with `flip_polarity`, each clip's
  waveform is negated with probability 1/2; in evaluation it runs
  deterministically on the audio as given.
  """
  def loss_fn(params, batch, key, *, step, train):
    del step
    audio = batch["audio"]
    if not train:
      logits = model.apply(params, audio)
    else:
      polarity_key, dropout_key = jax.random.split(key)
      if flip_polarity:
        audio = audio * jax.random.rademacher(polarity_key, (audio.shape[0], 1), audio.dtype)
      logits = model.apply(params, audio, train=True, rngs={"dropout": dropout_key})
    per_clip = optax.sigmoid_binary_cross_entropy(logits, batch["tags"]).mean(axis=-1)
    weight = batch.get("weight", jnp.ones_like(per_clip))
    loss = jnp.sum(per_clip * weight) / jnp.maximum(jnp.sum(weight), 1.0)
    correct = ((logits > 0) == (batch["tags"] > 0.5)).mean(axis=-1)
    accuracy = jnp.sum(correct * weight) / jnp.maximum(jnp.sum(weight), 1.0)
    return loss, {"bce": loss, "tag_accuracy": accuracy}
  return loss_fn


def model_config(config, num_tags):
  """The JSON-able model config saved with checkpoints: config.model plus num_tags."""
  return dict(config.model.to_dict(), num_tags=num_tags, stage_channels=list(config.model.stage_channels))


def train_and_evaluate(config, workdir):
  """Trains `config.model` on `config.data` into `workdir`, resuming if it holds a checkpoint.

  Args:
    config: ConfigDict with `model` (Tagger fields but num_tags), `data`
      (corpus name, config, data_dir, batch_size, crop, flip_polarity,
      eval_length, eval_batches) and `train` (see `training.loop.train`).
    workdir: run directory.

  Returns:
    The final TrainState.
  """
  data = config.data
  names = tagging.tag_names(data.name, data.config, data.data_dir)
  saved_config = model_config(config, len(names))
  model = build_model(saved_config)
  train_clips = tagging.preload(corpora.load_split(data.name, data.config, "train", data.data_dir))
  validation_clips = tagging.preload(corpora.load_split(data.name, data.config, "validation", data.data_dir))
  longest = int(train_clips.lengths.max())
  if data.crop > longest:
    raise InputError(f"data.crop is {data.crop} samples, longer than every training clip of {data.name}/"
                     f"{data.config} (the longest has {longest}); give --config.data.crop={longest} or less")

  def train_batch(step):
    return tagging.train_batch(train_clips, config.train.seed, step, data.batch_size, data.crop)

  def eval_batches():
    batches = tagging.eval_batches(validation_clips, data.batch_size, data.eval_length)
    return [{name: batch[name] for name in ("audio", "tags", "weight")}
            for _, batch in zip(range(data.eval_batches), batches)]

  return train(workdir=workdir, model_config=saved_config,
               init_params=lambda key: model.init(key, jnp.zeros((1, data.crop), jnp.float32)),
               loss_fn=make_loss_fn(model, data.flip_polarity), train_batch=train_batch, eval_batches=eval_batches,
               train_config=config.train, samples_per_batch=data.batch_size * data.crop,
               batch_size=data.batch_size,
               labels={"tags": names, "corpus": [data.name, data.config]}, loss_unit="tag")
