"""Training the frame prior with the shared loop on the cached frame features of a corpus."""

import jax
import jax.numpy as jnp
import numpy as np

import corpora
from corpora import batching
from corpora.schema import SAMPLE_RATE
from frameprior import model as model_lib
from training.loop import train
from vocoder import features as features_lib


def build_prior(model_config):
  """A FramePrior from a dict of its fields (a ConfigDict, or JSON read back from a checkpoint)."""
  return model_lib.FramePrior(**dict(model_config))


def frame_windows(vectors, starts, counts, speaker, gender, rng, batch_size, length):
  """Random windows of `length` frames: a batch dict.

  Clips are drawn in proportion to their frame count, a start uniformly in
  each; a clip shorter than `length` is padded at its end (mask 0 there).

  Returns:
    {"frames": [B, length, C] float32, "mask": [B, length] float32,
     "speaker": [B] int32, "gender": [B] int32}.
  """
  clip = rng.choice(len(counts), size=batch_size, p=counts / counts.sum())
  offset = (rng.random(batch_size) * np.maximum(counts[clip] - length + 1, 1)).astype(np.int64)
  index = starts[clip, None] + offset[:, None] + np.arange(length)
  mask = (offset[:, None] + np.arange(length)) < counts[clip, None]
  frames = np.where(mask[..., None], vectors[np.minimum(index, len(vectors) - 1)], 0.0).astype(np.float32)
  return {"frames": frames, "mask": mask.astype(np.float32), "speaker": speaker[clip].astype(np.int32),
          "gender": gender[clip].astype(np.int32)}


def load_frames(data, split):
  """(Clips, SplitFrames, [frames, C] frame vectors) of split `split` of the corpus `data` names."""
  clips = batching.preload(corpora.load_split(data.name, data.config, split, data.data_dir))
  split_frames = features_lib.load_split_frames(data.name, data.config, split, clips, SAMPLE_RATE, data.data_dir)
  return clips, split_frames, features_lib.frame_vectors(split_frames.features)


def validation_windows(loaded, seed, num_batches, batch_size, length):
  """The fixed validation batches (with weight 1) of a `load_frames` split: the same at every evaluation."""
  clips, split_frames, vectors = loaded
  rng = np.random.default_rng([seed, 1, 0])
  for _ in range(num_batches):
    batch = frame_windows(vectors, split_frames.starts, split_frames.counts, clips.speaker, clips.gender, rng,
                          batch_size, length)
    yield dict(batch, weight=np.ones(batch_size, np.float32))


def make_loss_fn(model, input_noise):
  """`(params, batch, key, *, step, train) -> (nats per frame, metrics)`; inputs are the previous frames plus
  Gaussian noise, in training and in evaluation alike."""
  def loss_fn(params, batch, key, *, step, train):
    del step, train
    frames, mask = batch["frames"], batch["mask"]
    previous = jnp.pad(frames[:, :-1], ((0, 0), (1, 0), (0, 0)))
    previous = previous + input_noise * jax.random.normal(key, previous.shape)
    output = model.apply(params, previous, batch["speaker"], batch["gender"])
    log_likelihood = model_lib.log_likelihood(output, frames)
    weight = mask * batch.get("weight", jnp.ones(frames.shape[:1]))[:, None]
    nats = -jnp.sum(log_likelihood * weight) / jnp.sum(weight)
    voiced = frames[..., model_lib.VOICING_CHANNEL]
    voicing_accuracy = jnp.sum(((output.voicing_logit > 0) == (voiced > 0.5)) * weight) / jnp.sum(weight)
    return nats, {"voicing_accuracy": voicing_accuracy}
  return loss_fn


def train_and_evaluate(config, workdir):
  """Trains the frame prior of `config` into `workdir`, resuming from its last checkpoint."""
  model = build_prior(config.model)
  data = config.data
  seed = config.train.seed

  train_clips, train_frames, train_vectors = load_frames(data, "train")
  validation = load_frames(data, "validation")

  def train_batch(step):
    rng = np.random.default_rng([seed, step])
    batch = frame_windows(train_vectors, train_frames.starts, train_frames.counts, train_clips.speaker,
                          train_clips.gender, rng, data.batch_size, data.frames)
    dropped = rng.random(data.batch_size) < data.speaker_dropout
    batch["speaker"] = np.where(dropped, -1, batch["speaker"]).astype(np.int32)
    return batch

  def eval_batches():
    return validation_windows(validation, seed, data.eval_batches, data.batch_size, data.frames)

  zeros = jnp.zeros((1, data.frames, model.frame_channels))
  ids = jnp.zeros((1,), jnp.int32)
  return train(workdir=workdir, model_config=config.model.to_dict(),
               init_params=lambda key: model.init(key, zeros, ids, ids),
               loss_fn=make_loss_fn(model, data.input_noise), train_batch=train_batch, eval_batches=eval_batches,
               train_config=config.train, samples_per_batch=data.batch_size * data.frames,
               batch_size=data.batch_size, loss_unit="frame",
               labels=batching.speaker_labels(data.name, data.config, train_clips, data.data_dir))
