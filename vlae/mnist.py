"""Binarised digit images and the MLP VAE of Kingma & Welling (2014) for them.

Two sources give grey levels in [0, 1] that are binarised by sampling each
pixel as a Bernoulli of its grey level (fresh every training step, fixed for
evaluation):

  digits  scikit-learn's bundled 8x8 digits (1797 images, 17 grey levels),
          offline; a fixed split of 1297 train, 200 validation, 300 test.
  mnist   MNIST 28x28 through TFDS (no TensorFlow needed), read only when
          already prepared locally: 50000 train, 10000 validation (the last
          of the train split), 10000 test. Nothing is ever downloaded.
"""

import logging
from typing import NamedTuple

import flax.linen as nn
import numpy as np
import tensorflow_datasets as tfds
from sklearn import datasets as sklearn_datasets

from common.errors import InputError
from vlae import distributions
from vlae.vae import AutoregressiveFlowPrior, StandardNormalPrior, VAE

DATASETS = ("digits", "mnist")
PRIORS = ("standard_normal", "flow")
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}
DIGITS_SPLIT = {"validation": 200, "test": 300}  # Images held out of sklearn's 1797; the rest train.
MNIST_VALIDATION = 10_000  # Last images of the TFDS train split kept for validation.


class ImageSplits(NamedTuple):
  """Grey-level images, flattened row by row.

  train, validation, test: [N, height * width] float32 in [0, 1].
  image_shape: (height, width).
  """
  train: np.ndarray
  validation: np.ndarray
  test: np.ndarray
  image_shape: tuple


def load_digits():
  """sklearn's 8x8 digits as ImageSplits: 16 grey levels scaled to [0, 1], split by a fixed permutation."""
  images = sklearn_datasets.load_digits().images.reshape(-1, 64).astype(np.float32) / 16.0
  images = images[np.random.default_rng(0).permutation(len(images))]
  num_validation, num_test = DIGITS_SPLIT["validation"], DIGITS_SPLIT["test"]
  return ImageSplits(train=images[num_validation + num_test:], validation=images[:num_validation],
                     test=images[num_validation:num_validation + num_test], image_shape=(8, 8))


def _is_prepared(builder):
  """`builder.is_prepared()` without TFDS's warning about a folder that lacks dataset_info.json."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    return builder.is_prepared()
  finally:
    logger.setLevel(level)


def _read_mnist_split(builder, split):
  """[N, 784] float32 in [0, 1] from a prepared MNIST builder."""
  try:
    source = builder.as_data_source(split=split)
  except NotImplementedError:
    raise InputError(f"MNIST in {builder.data_dir} is stored as {builder.info.file_format.value}, which has no "
                     "random access; prepare it again with: tfds build mnist --file_format=array_record "
                     f"--data_dir {builder.data_dir_root}") from None
  images = np.stack([np.asarray(source[index]["image"]) for index in range(len(source))])
  return images.reshape(len(images), -1).astype(np.float32) / 255.0


def load_mnist(data_dir=None):
  """MNIST from a local TFDS preparation as ImageSplits; never downloads.

  Args:
    data_dir: TFDS data dir; None: $TFDS_DATA_DIR or ~/tensorflow_datasets.

  Raises:
    InputError: MNIST is not prepared there, or not in a random-access format.
  """
  builder = tfds.builder("mnist", data_dir=data_dir)
  if not _is_prepared(builder):
    raise InputError(f"MNIST is not prepared in {builder.data_dir_root} and nothing is downloaded; prepare it once "
                     f"with: tfds build mnist --file_format=array_record --data_dir {builder.data_dir_root} "
                     "(or pass the data dir that holds it)")
  train = _read_mnist_split(builder, "train")
  return ImageSplits(train=train[:-MNIST_VALIDATION], validation=train[-MNIST_VALIDATION:],
                     test=_read_mnist_split(builder, "test"), image_shape=(28, 28))


def load_splits(name, data_dir=None):
  """ImageSplits of dataset `name` ("digits" or "mnist")."""
  if name == "digits":
    return load_digits()
  if name == "mnist":
    return load_mnist(data_dir)
  raise InputError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


def binarize(images, rng):
  """Each pixel 1 with probability its grey level: [N, P] in [0, 1] -> [N, P] float32 in {0, 1}."""
  return (rng.random(images.shape) < images).astype(np.float32)


def train_batch(images, seed, step, batch_size):
  """A freshly binarised random batch, a pure function of (seed, step): [batch_size, P] float32."""
  rng = np.random.default_rng([seed, step])
  return binarize(images[rng.choice(len(images), batch_size, replace=False)], rng)


EVAL_STREAMS = {"validation": 1, "test": 2}  # third seed word of each evaluation split's binarisation


def fixed_binarization(images, seed, split):
  """One binarisation per (seed, split), for evaluation: [N, P] float32 in {0, 1}.

  Its stream [seed, 2**32 - 1, EVAL_STREAMS[split]] is none of the training
  batches' [seed, step] (numpy pads shorter seeds with zero words, so a
  trailing 0 would not have made it distinct).
  """
  return binarize(images, np.random.default_rng([seed, 2**32 - 1, EVAL_STREAMS[split]]))


class MLPEncoder(nn.Module):
  """q(z|x): x [B, P] -> one hidden layer -> DiagonalGaussian over z [B, latent_features]."""
  hidden_features: int = 400
  latent_features: int = 20
  activation: str = "tanh"

  @nn.compact
  def __call__(self, x):
    hidden = ACTIVATIONS[self.activation](nn.Dense(self.hidden_features, name="hidden")(x))
    return distributions.DiagonalGaussian(mean=nn.Dense(self.latent_features, name="mean")(hidden),
                                          log_scale=nn.Dense(self.latent_features, name="log_scale")(hidden))


class BernoulliMLPDecoder(nn.Module):
  """p(x|z): z [B, latent] -> one hidden layer -> Bernoulli over x [B, num_pixels]."""
  hidden_features: int = 400
  num_pixels: int = 784
  activation: str = "tanh"

  @nn.compact
  def __call__(self, z, x=None):
    del x  # Pixels are independent given z: no teacher forcing.
    hidden = ACTIVATIONS[self.activation](nn.Dense(self.hidden_features, name="hidden")(z))
    return distributions.Bernoulli(logits=nn.Dense(self.num_pixels, name="logits")(hidden))


def build_vae(model_config):
  """The MLP VAE of a model config (dict or ConfigDict).

  Fields: hidden_features, latent_features, activation (tanh | relu),
  prior (standard_normal | flow), flow_layers, flow_hidden_features,
  image_shape (height, width).
  """
  if model_config["activation"] not in ACTIVATIONS:
    raise InputError(f"unknown activation {model_config['activation']!r}; known: {', '.join(ACTIVATIONS)}")
  if model_config["prior"] not in PRIORS:
    raise InputError(f"unknown prior {model_config['prior']!r}; known: {', '.join(PRIORS)}")
  if model_config["prior"] == "flow":
    prior = AutoregressiveFlowPrior(num_layers=model_config["flow_layers"],
                                    hidden_features=model_config["flow_hidden_features"])
  else:
    prior = StandardNormalPrior()
  height, width = model_config["image_shape"]
  return VAE(encoder=MLPEncoder(model_config["hidden_features"], model_config["latent_features"],
                                model_config["activation"]),
             decoder=BernoulliMLPDecoder(model_config["hidden_features"], height * width, model_config["activation"]),
             prior=prior)
