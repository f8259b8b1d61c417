"""Training the MLP VAE on binarised digits with the shared loop, then its test bounds and figures."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from common.figures import pyplot, save_figure
from common.files import save_json
from training.loop import train
from vlae import mnist
from vlae.vae import importance_weighted_bound, VAE, vae_loss

TEST_METRICS_FILE = "test_metrics.json"
PRIOR_SAMPLES_FILE = "prior_samples.png"
RECONSTRUCTIONS_FILE = "reconstructions.png"


def make_loss_fn(model, kl_warmup_steps, free_bits):
  """`(params, batch, key, *, step, train) -> (objective nats per image, metrics)` for the shared loop.

  The batch holds `image: [B, P]` float32 in {0, 1}. Training scores the
  objective (the KL warm-up weight set by `step`, free bits); evaluation
  scores the negative ELBO at full KL weight.
  """
  def loss_fn(params, batch, key, *, step, train):
    loss = vae_loss(model, params, batch["image"], key, step if train else kl_warmup_steps, kl_warmup_steps,
                    free_bits)
    objective = loss.objective if train else -jnp.mean(loss.elbo)
    return objective, {"elbo": jnp.mean(loss.elbo), "reconstruction": jnp.mean(loss.reconstruction),
                       "kl": jnp.mean(loss.kl), "kl_free_bits": loss.kl_free_bits, "beta": loss.beta}
  return loss_fn


def evaluate_bounds(model, params, images, key, num_samples, chunk_size, batch_size):
  """Mean test ELBO and IWAE-k bound over `images: [N, P]` in {0, 1}.

  Returns:
    {"elbo_nats", "iwae_nats", "nll_iwae_nats", "iwae_samples", "num_images"}:
    bounds on log p(x) per image (nats) and the NLL estimate -iwae.
  """
  bound = jax.jit(lambda params, x, key: importance_weighted_bound(model, params, x, key, num_samples, chunk_size))
  elbo, iwae = [], []
  for index, start in enumerate(range(0, len(images), batch_size)):
    batch = jnp.asarray(images[start:start + batch_size])
    result = jax.device_get(bound(params, batch, jax.random.fold_in(key, index)))
    elbo.append(result.elbo)
    iwae.append(result.iwae)
  elbo, iwae = float(np.concatenate(elbo).mean()), float(np.concatenate(iwae).mean())
  return {"elbo_nats": elbo, "iwae_nats": iwae, "nll_iwae_nats": -iwae, "iwae_samples": num_samples,
          "num_images": len(images)}


def _tile(images, image_shape, columns):
  """[N, P] -> one [rows * (h + 1) - 1, columns * (w + 1) - 1] image with light grey 1-pixel gaps."""
  height, width = image_shape
  rows = len(images) // columns
  padded = np.pad(images[:rows * columns].reshape(rows, columns, height, width), ((0, 0), (0, 0), (0, 1), (0, 1)),
                  constant_values=0.3)
  return padded.transpose(0, 2, 1, 3).reshape(rows * (height + 1), columns * (width + 1))[:-1, :-1]


def _show(axis, images, image_shape, columns, title):
  axis.imshow(_tile(images, image_shape, columns), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
  axis.set_title(title)
  axis.axis("off")


def save_figures(model, params, test_images, image_shape, latent_features, key, num_images, workdir):
  """Writes PRIOR_SAMPLES_FILE and RECONSTRUCTIONS_FILE (pixel probabilities p(x=1|z)) to `workdir`."""
  columns = int(math.sqrt(num_images))
  noise = jax.random.normal(key, (columns * columns, latent_features))
  generated = np.asarray(jax.jit(lambda params, noise: model.apply(params, noise, method=VAE.generate).mean())(
      params, noise))
  figure, axis = pyplot().subplots(figsize=(6, 6))
  _show(axis, generated, image_shape, columns, "p(x | z), z from the prior")
  save_figure(figure, os.path.join(workdir, PRIOR_SAMPLES_FILE))

  originals = test_images[:columns * columns]
  reconstructed = np.asarray(jax.jit(lambda params, x: model.apply(params, x, method=VAE.reconstruct).mean())(
      params, jnp.asarray(originals)))
  figure, axes = pyplot().subplots(1, 2, figsize=(12, 6))
  _show(axes[0], originals, image_shape, columns, "test images")
  _show(axes[1], reconstructed, image_shape, columns, "p(x | z), z the posterior mean")
  save_figure(figure, os.path.join(workdir, RECONSTRUCTIONS_FILE))


def train_and_evaluate(config, workdir):
  """Trains the VAE of `config` into `workdir`, then writes its test bounds and figures.

  Args:
    config: ConfigDict with `model` (see `mnist.build_vae`; image_shape comes
      from the data), `data` (name, data_dir, batch_size, eval_batches),
      `objective` (kl_warmup_steps, free_bits), `train` (see
      `training.loop.train`) and `eval` (iwae_samples, chunk_size,
      batch_size, plot_images).
    workdir: run directory; rerunning resumes, then evaluates again.

  Returns:
    The test metrics dict, also written to `workdir/test_metrics.json`.
  """
  data, objective, evaluation = config.data, config.objective, config.eval
  splits = mnist.load_splits(data.name, data.data_dir)
  model_config = dict(config.model.to_dict(), image_shape=list(splits.image_shape))
  model = mnist.build_vae(model_config)
  seed = config.train.seed
  validation = mnist.fixed_binarization(splits.validation, seed, "validation")

  def train_batch(step):
    return {"image": mnist.train_batch(splits.train, seed, step, data.batch_size)}

  def eval_batches():  # The negative ELBO; a last partial batch is left out.
    starts = range(0, len(validation) - data.batch_size + 1, data.batch_size)[:data.eval_batches]
    return [{"image": validation[start:start + data.batch_size], "weight": np.ones(data.batch_size, np.float32)}
            for start in starts]

  num_pixels = len(splits.train[0])
  state = train(workdir=workdir, model_config=model_config,
                init_params=lambda key: jax.jit(model.init)(key, jnp.zeros((1, num_pixels), jnp.float32), key),
                loss_fn=make_loss_fn(model, objective.kl_warmup_steps, objective.free_bits),
                train_batch=train_batch, eval_batches=eval_batches, train_config=config.train,
                samples_per_batch=data.batch_size, batch_size=data.batch_size, loss_unit="image")

  test_images = mnist.fixed_binarization(splits.test, seed, "test")
  key = jax.random.key(seed + 2)
  metrics = dict(evaluate_bounds(model, state.params, test_images, jax.random.fold_in(key, 0), evaluation.iwae_samples,
                             evaluation.chunk_size, evaluation.batch_size), dataset=data.name, step=int(state.step))
  save_json(os.path.join(workdir, TEST_METRICS_FILE), metrics)
  save_figures(model, state.params, test_images, splits.image_shape, config.model.latent_features,
               jax.random.fold_in(key, 1), evaluation.plot_images, workdir)
  return metrics
