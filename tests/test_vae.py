"""VAE: distributions, KL, ELBO and IWAE bounds, flow prior, free bits, warm-up, digits, MNIST, CLI."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow_datasets as tfds

from common.errors import InputError
from experiments.configs import vae_digits
from vlae import distributions, mnist, train_mnist
from vlae.vae import (VAE, AutoregressiveFlowPrior, StandardNormalPrior, free_bits_kl, importance_weighted_bound,
                      kl_warmup_weight, vae_loss)
from tests.conftest import REPO_ROOT
from wavenet import mixture


# The toy model z ~ N(0, 1), x | z ~ N(A z + B, S^2), so p(x) = N(B, A^2 + S^2).
A, B, S = 1.5, 0.3, 0.5
POSTERIOR_VARIANCE = S**2 / (A**2 + S**2)
POSTERIOR_GAIN = A / (A**2 + S**2)  # E[z | x] = POSTERIOR_GAIN * (x - B)


class AffineEncoder(nn.Module):
  """q(z|x) = N(gain * x + offset, exp(log_scale)^2) on [B, 1]."""
  gain: float
  offset: float
  log_scale: float

  def __call__(self, x):
    return distributions.DiagonalGaussian(self.gain * x + self.offset, jnp.full_like(x, self.log_scale))


class LinearGaussianDecoder(nn.Module):
  """p(x|z) = N(A z + B, S^2)."""

  def __call__(self, z, x=None):
    del x
    return distributions.DiagonalGaussian(A * z + B, jnp.full_like(z, math.log(S)))


def toy_vae(gain=POSTERIOR_GAIN, offset=-POSTERIOR_GAIN * B, log_scale=0.5 * math.log(POSTERIOR_VARIANCE)):
  """The toy VAE; by default q(z|x) is the exact posterior."""
  return VAE(encoder=AffineEncoder(gain, offset, log_scale), decoder=LinearGaussianDecoder(),
             prior=StandardNormalPrior())


def toy_data(num, seed=0):
  """[num, 1] float32 draws of x ~ p(x) and their exact log p(x): [num]."""
  x = np.random.default_rng(seed).normal(B, math.sqrt(A**2 + S**2), (num, 1)).astype(np.float32)
  return jnp.asarray(x), scipy.stats.norm.logpdf(x[:, 0], B, math.sqrt(A**2 + S**2))


_jitted_bound = jax.jit(importance_weighted_bound, static_argnums=(0, 4, 5))


def bound(model, x, num_samples, chunk_size=None, seed=0):
  return _jitted_bound(model, {}, x, jax.random.key(seed), num_samples, chunk_size)


_jitted_loss = jax.jit(vae_loss, static_argnums=(0, 5, 6))


def loss_of(model, x, key, step, kl_warmup_steps=0, free_bits=0.0):
  return _jitted_loss(model, {}, x, key, step, kl_warmup_steps, free_bits)


def test_bernoulli_and_gaussian_log_probs_match_scipy():
  rng = np.random.default_rng(0)
  logits = rng.normal(0.0, 2.0, (3, 5)).astype(np.float32)
  x = (rng.random((3, 5)) < 0.5).astype(np.float32)
  bernoulli = distributions.Bernoulli(jnp.asarray(logits))
  expected = scipy.stats.bernoulli.logpmf(x, scipy.special.expit(logits)).sum(-1)
  np.testing.assert_allclose(bernoulli.log_prob(x), expected, rtol=1e-5)
  np.testing.assert_array_equal(bernoulli.mode(), (logits > 0).astype(np.float32))
  mean, log_scale = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  y = rng.normal(size=(3, 4, 5)).astype(np.float32)
  expected = scipy.stats.norm.logpdf(y, mean, np.exp(log_scale))
  gaussian = distributions.DiagonalGaussian(jnp.asarray(mean), jnp.asarray(log_scale))
  np.testing.assert_allclose(gaussian.log_prob_per_dim(y), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gaussian.log_prob(y), expected.sum(-1), rtol=1e-5)
  np.testing.assert_allclose(gaussian.replace(event_ndims=2).log_prob(y), expected.sum((-2, -1)), rtol=1e-5)
  np.testing.assert_array_equal(gaussian.mode(), mean)


def test_bernoulli_and_gaussian_samples_have_their_moments():
  key = jax.random.key(0)
  logits = jnp.array([-2.0, 0.0, 1.5])
  frequencies = distributions.Bernoulli(jnp.broadcast_to(logits, (20_000, 3))).sample(key).mean(0)
  np.testing.assert_allclose(frequencies, scipy.special.expit(logits), atol=0.015)
  gaussian = distributions.DiagonalGaussian(jnp.array([[1.0, -2.0]]), jnp.log(jnp.array([[0.5, 3.0]])))
  draws = gaussian.sample(key, (20_000,))
  assert draws.shape == (20_000, 1, 2)
  np.testing.assert_allclose(draws.mean(0)[0], [1.0, -2.0], atol=0.05)
  np.testing.assert_allclose(draws.std(0)[0], [0.5, 3.0], rtol=0.02)


def test_categorical_normalises_and_sums_over_events():
  logits = 3.0 * np.random.default_rng(1).normal(size=(2, 3, 256)).astype(np.float32)
  x = jnp.array([[0, 17, 255], [3, 128, 64]])

  @jax.jit
  def evaluate(logits, key):
    per_element = distributions.Categorical(logits, event_ndims=0)
    total = jnp.exp(per_element.log_prob(jnp.arange(256)[:, None, None] * jnp.ones((256, 2, 3), jnp.int32))).sum(0)
    return (total, distributions.Categorical(logits).log_prob(x), per_element.log_prob(x), per_element.mode(),
            per_element.sample(key))

  total, log_prob, per_element_log_prob, mode, sample = evaluate(logits, jax.random.key(2))
  np.testing.assert_allclose(total, np.ones((2, 3)), rtol=1e-5)
  expected = scipy.special.log_softmax(logits, -1)[np.arange(2)[:, None], np.arange(3), np.asarray(x)]
  np.testing.assert_allclose(per_element_log_prob, expected, rtol=1e-5)
  np.testing.assert_allclose(log_prob, expected.sum(-1), rtol=1e-5)
  np.testing.assert_array_equal(mode, logits.argmax(-1))
  assert sample.dtype == jnp.int32 and sample.shape == (2, 3) and bool(jnp.all((sample >= 0) & (sample < 256)))


def test_logistic_mixture_wraps_wavenet_mixture_and_normalises():
  params = jax.random.normal(jax.random.key(3), (2, 4, 30))
  x = jax.random.randint(jax.random.key(4), (2, 4), 0, 256)
  all_codes = jnp.arange(256)[:, None, None] * jnp.ones((256, 2, 4), jnp.int32)

  @jax.jit
  def wrapped_and_direct(params, x, key):
    distribution = distributions.DiscretizedLogisticMixture(params)
    total = jnp.exp(distributions.DiscretizedLogisticMixture(params, event_ndims=0).log_prob(all_codes)).sum(0)
    return ((distribution.log_prob(x), distribution.mode(), distribution.sample(key), total),
            (mixture.log_prob(params, x).sum(-1), mixture.mode(params), mixture.sample(key, params)))

  (log_prob, mode, sample, total), (expected_log_prob, expected_mode, expected_sample) = wrapped_and_direct(
      params, x, jax.random.key(5))
  np.testing.assert_allclose(log_prob, expected_log_prob, rtol=1e-6)
  np.testing.assert_allclose(total, np.ones((2, 4)), rtol=1e-4)
  np.testing.assert_array_equal(mode, expected_mode)
  np.testing.assert_array_equal(sample, expected_sample)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
  q = distributions.DiagonalGaussian(jnp.array([0.5, -1.0, 2.0]), jnp.array([-0.3, 0.4, 0.0]))
  p = distributions.DiagonalGaussian(jnp.array([0.0, 1.0, 1.5]), jnp.array([0.2, -0.5, 0.0]))
  z = q.sample(jax.random.key(0), (200_000,))
  log_ratio = q.log_prob_per_dim(z) - p.log_prob_per_dim(z)
  standard_error = log_ratio.std(0) / math.sqrt(len(z))
  kl = distributions.kl_divergence(q, p)
  assert kl.shape == (3,)
  assert np.all(np.abs(log_ratio.mean(0) - kl) < 4 * standard_error + 1e-6), (log_ratio.mean(0), kl)
  np.testing.assert_allclose(distributions.kl_divergence(q, q), np.zeros(3), atol=1e-7)


def test_exact_posterior_makes_elbo_and_iwae_equal_log_likelihood():
  x, log_px = toy_data(16)
  result = bound(toy_vae(), x, num_samples=7)
  np.testing.assert_allclose(result.iwae, log_px, atol=2e-5)
  np.testing.assert_allclose(result.elbo, log_px, atol=2e-5)


def test_elbo_le_iwae_le_log_likelihood_and_iwae_rises_with_k():
  model = toy_vae(gain=0.5 * POSTERIOR_GAIN, offset=0.2, log_scale=0.5 * math.log(POSTERIOR_VARIANCE) + 0.6)
  x, log_px = toy_data(256)
  result = bound(model, x, 1000, chunk_size=250)

  @jax.jit
  def bound_draws(x, key):  # [1000, 256]: the draws of `bound`, draw i from fold_in(key, i).
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(1000))
    return model.apply({}, x, keys, method=VAE.log_importance_weights)

  log_weights = np.asarray(bound_draws(x, jax.random.key(0)), np.float64)
  np.testing.assert_allclose(result.iwae, scipy.special.logsumexp(log_weights, 0) - math.log(1000), rtol=1e-5)
  np.testing.assert_allclose(result.elbo, log_weights.mean(0), rtol=1e-5)
  assert bool(jnp.all(result.elbo <= result.iwae))  # Jensen, example by example.
  # IWAE-k for k = 1 ... 1000, each averaged over the 1000 / k disjoint groups of k draws.
  means = [float(np.mean(scipy.special.logsumexp(log_weights.reshape(1000 // k, k, -1), axis=1) - math.log(k)))
           for k in (1, 10, 100, 1000)]
  assert all(low < high for low, high in zip(means, means[1:])), means
  # IWAE-k <= log p(x) in expectation: clear for small k; by k = 1000 the gap is within the noise.
  assert means[2] < log_px.mean() - 0.005 and abs(means[3] - log_px.mean()) < 0.01, (means, log_px.mean())
  # The k-draw ELBO estimate agrees with the analytic ELBO and with one-draw ELBOs of the training loss.
  x = np.asarray(x[:, 0], np.float64)
  q_mean, q_variance = 0.5 * POSTERIOR_GAIN * x + 0.2, POSTERIOR_VARIANCE * math.exp(1.2)
  expected_reconstruction = (-0.5 * math.log(2 * math.pi * S**2)
                             - (np.square(x - A * q_mean - B) + A**2 * q_variance) / (2 * S**2))
  expected_kl = 0.5 * (q_variance + np.square(q_mean) - 1.0 - math.log(q_variance))
  expected_elbo = expected_reconstruction - expected_kl
  error = np.asarray(result.elbo) - expected_elbo
  assert abs(error.mean()) < 4 * error.std() / math.sqrt(len(error)), error
  loss = loss_of(model, jnp.repeat(jnp.asarray(x[:4, None], jnp.float32), 4000, axis=0), jax.random.key(9), 0)
  np.testing.assert_allclose(loss.kl[::4000], expected_kl[:4], rtol=1e-5)
  error = np.asarray(loss.elbo) - np.repeat(expected_elbo[:4], 4000)
  assert abs(error.mean()) < 4 * error.std() / math.sqrt(len(error)), error


def test_iwae_does_not_depend_on_the_chunk_size():
  model = toy_vae(gain=0.3, offset=0.0, log_scale=0.0)
  x, _ = toy_data(5)
  whole, chunked = bound(model, x, 20), bound(model, x, 20, chunk_size=7)
  np.testing.assert_allclose(chunked.iwae, whole.iwae, rtol=1e-6)
  np.testing.assert_allclose(chunked.elbo, whole.elbo, rtol=1e-6)


def perturbed_flow(size, seed):
  """A 2-layer flow prior on R^size with random (not identity) parameters."""
  prior = AutoregressiveFlowPrior(num_layers=2, hidden_features=8)

  @jax.jit
  def perturbed_params(key):
    init_key, noise_key = jax.random.split(key)
    params = prior.init(init_key, jnp.zeros((1, size)), method=prior.log_prob_per_dim)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(noise_key, len(leaves))
    return jax.tree.unflatten(treedef, [leaf + 0.2 * jax.random.normal(key, leaf.shape)
                                        for leaf, key in zip(leaves, keys)])

  return prior, perturbed_params(jax.random.key(seed))


def test_flow_prior_density_integrates_to_one():
  prior, params = perturbed_flow(2, seed=2)
  grid = np.linspace(-12.0, 12.0, 481, dtype=np.float32)
  points = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
  log_density = jax.jit(lambda z: prior.apply(params, z, method=prior.log_prob_per_dim).sum(-1))(points)
  total = float(jnp.exp(log_density).sum()) * (grid[1] - grid[0]) ** 2
  assert abs(total - 1.0) < 1e-3, total
  assert float(jnp.abs(log_density - scipy.stats.norm.logpdf(points).sum(-1)).max()) > 0.5  # Not the identity.


def test_flow_prior_density_is_the_change_of_variables_of_its_sampler():
  prior, params = perturbed_flow(3, seed=2)
  noise = jax.random.normal(jax.random.key(3), (50, 3))

  def sample(eps):
    return prior.apply(params, eps, method=prior.sample_from_noise)

  @jax.jit
  def density_and_change_of_variables(noise):
    z = sample(noise)
    log_det = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(sample))(noise))[1]  # log |det dz / d eps|
    return prior.apply(params, z, method=prior.log_prob_per_dim).sum(-1), -0.5 * jnp.sum(
        jnp.square(noise), -1) - 1.5 * math.log(2 * math.pi) - log_det

  log_density, expected = density_and_change_of_variables(noise)
  np.testing.assert_allclose(log_density, expected, rtol=1e-4, atol=1e-4)


def test_free_bits_floor_each_dimension_of_the_batch_mean_kl():
  kl = jnp.array([[0.0, 0.5, 2.0], [0.2, 0.1, 4.0]])  # Batch means 0.1, 0.3, 3.0.
  np.testing.assert_allclose(free_bits_kl(kl, 0.25), 0.25 + 0.3 + 3.0, rtol=1e-6)
  np.testing.assert_allclose(free_bits_kl(kl, 0.0), kl.sum(-1).mean(), rtol=1e-6)
  estimate = jnp.array([[-0.3, 0.5], [0.1, 0.7]])  # A Monte-Carlo KL may be negative per element.
  np.testing.assert_allclose(free_bits_kl(estimate, 0.0), 0.5, rtol=1e-6)
  np.testing.assert_array_equal(jax.grad(free_bits_kl)(estimate, 0.0), np.full((2, 2), 0.5))
  gradient = jax.grad(free_bits_kl)(kl, 0.25)
  np.testing.assert_array_equal(gradient, [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
  kl_per_dim = jax.random.uniform(jax.random.key(0), (8, 5), maxval=0.4)
  assert float(free_bits_kl(kl_per_dim, 0.2)) >= 5 * 0.2
  # A posterior equal to the prior has KL 0 yet pays the floor in the objective.
  prior_like = toy_vae(gain=0.0, offset=0.0, log_scale=0.0)
  x, _ = toy_data(8)
  loss = loss_of(prior_like, x, jax.random.key(1), 10, kl_warmup_steps=10, free_bits=0.7)
  np.testing.assert_allclose(loss.kl, np.zeros(8), atol=1e-7)
  np.testing.assert_allclose(loss.kl_free_bits, 0.7, rtol=1e-6)
  np.testing.assert_allclose(loss.objective, -loss.reconstruction.mean() + 0.7, rtol=1e-6)


def test_kl_warmup_weight_ramps_from_zero_to_one():
  np.testing.assert_allclose([kl_warmup_weight(step, 100) for step in (0, 25, 50, 100, 1000)], [0, 0.25, 0.5, 1, 1])
  assert float(kl_warmup_weight(0, 0)) == 1.0
  model = toy_vae(gain=0.3, offset=0.1, log_scale=-0.2)
  x, _ = toy_data(8)
  loss = loss_of(model, x, jax.random.key(0), jnp.int32(50), kl_warmup_steps=100)
  assert float(loss.beta) == 0.5
  np.testing.assert_allclose(loss.objective, -loss.reconstruction.mean() + 0.5 * loss.kl.mean(), rtol=1e-6)
  # The ELBO takes neither the warm-up weight nor the floor. A posterior of scale e^-9 puts its one draw at the
  # mean to within 1e-4, so both terms have closed forms: log N(x; A m + B, S^2) and
  # 0.5 (m^2 + s^2 - 1 - log s^2) with m = 0.3 x + 0.1, log s = -9.
  narrow = loss_of(toy_vae(gain=0.3, offset=0.1, log_scale=-9.0), x, jax.random.key(0), jnp.int32(50),
                   kl_warmup_steps=100, free_bits=0.2)
  x_values = np.asarray(x[:, 0], np.float64)
  q_mean = 0.3 * x_values + 0.1
  expected_reconstruction = scipy.stats.norm.logpdf(x_values, A * q_mean + B, S)
  expected_kl = 0.5 * (np.square(q_mean) + math.exp(-18.0) - 1.0 + 18.0)
  np.testing.assert_allclose(narrow.reconstruction, expected_reconstruction, atol=1e-3)
  np.testing.assert_allclose(narrow.kl, expected_kl, rtol=1e-5)
  np.testing.assert_allclose(narrow.elbo, expected_reconstruction - expected_kl, atol=1e-3)
  np.testing.assert_allclose(narrow.objective, -expected_reconstruction.mean() + 0.5 * expected_kl.mean(), atol=1e-3)


def test_default_digits_model_is_the_400_hidden_20_latent_mlp():
  config = vae_digits.get_config()
  model = mnist.build_vae(dict(config.model.to_dict(), image_shape=[28, 28]))
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 784)), jax.random.key(1))["params"]
  assert shapes["encoder"]["hidden"]["kernel"].shape == (784, 400)
  assert shapes["encoder"]["mean"]["kernel"].shape == (400, 20)
  assert shapes["decoder"]["logits"]["kernel"].shape == (400, 784)


def test_digits_are_binarised_from_a_fixed_split():
  splits = mnist.load_digits()
  assert [len(split) for split in splits[:3]] == [1297, 200, 300] and splits.image_shape == (8, 8)
  assert splits.train.min() == 0.0 and splits.train.max() == 1.0
  np.testing.assert_array_equal(mnist.load_digits().test, splits.test)
  batch = mnist.train_batch(splits.train, seed=0, step=3, batch_size=16)
  assert batch.shape == (16, 64) and set(np.unique(batch)) <= {0.0, 1.0}
  np.testing.assert_array_equal(batch, mnist.train_batch(splits.train, seed=0, step=3, batch_size=16))
  assert not np.array_equal(batch, mnist.train_batch(splits.train, seed=0, step=4, batch_size=16))


def test_evaluation_binarisations_are_streams_of_their_own():
  images = np.full((50, 64), 0.5, np.float32)
  streams = [mnist.fixed_binarization(images, 0, "validation"), mnist.fixed_binarization(images, 0, "test"),
             mnist.binarize(images, np.random.default_rng([0, 0]))]  # the stream of training step 0
  np.testing.assert_array_equal(streams[0], mnist.fixed_binarization(images, 0, "validation"))
  assert all(not np.array_equal(streams[i], streams[j]) for i, j in ((0, 1), (0, 2), (1, 2)))


def test_evaluation_batches_score_the_negative_elbo_without_free_bits():
  config = vae_digits.get_config("smoke")
  model = mnist.build_vae(dict(config.model.to_dict(), image_shape=[8, 8]))
  images = jnp.asarray(mnist.fixed_binarization(mnist.load_digits().test[:8], 0, "test"))
  key = jax.random.key(0)
  params = model.init(key, images, key)
  loss_fn = train_mnist.make_loss_fn(model, kl_warmup_steps=0, free_bits=100.0)
  batch = {"image": images}
  trained, metrics = loss_fn(params, batch, key, step=0, train=True)
  evaluated, _ = loss_fn(params, dict(batch, weight=np.ones(8, np.float32)), key, step=0, train=False)
  assert float(evaluated) == pytest.approx(-float(metrics["elbo"]), rel=1e-6)
  assert float(trained) > float(evaluated) + 1.0  # the free-bits floor only in training


@pytest.mark.slow
def test_smoke_config_trains_through_the_shared_loop_and_evaluates(tmp_path):
  config = vae_digits.get_config("smoke")
  metrics = train_mnist.train_and_evaluate(config, str(tmp_path))
  assert metrics["step"] == 2 and metrics["iwae_samples"] == 16 and metrics["num_images"] == 300
  assert math.isfinite(metrics["elbo_nats"]) and metrics["elbo_nats"] <= metrics["iwae_nats"] < 0
  assert json.loads((tmp_path / train_mnist.TEST_METRICS_FILE).read_text()) == metrics
  names = {row.split(",")[1] for row in (tmp_path / "metrics.csv").read_text().splitlines()[1:]}
  assert {"train/elbo", "train/kl", "train/beta", "eval/elbo", "eval/loss", "eval/bits_per_image"} <= names
  assert "eval/bits_per_sample" not in names
  for name in (train_mnist.PRIOR_SAMPLES_FILE, train_mnist.RECONSTRUCTIONS_FILE):
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_is_read_through_tfds_without_tensorflow(monkeypatch):
  assert importlib.util.find_spec("tensorflow") is None
  monkeypatch.setattr(mnist, "MNIST_VALIDATION", 4)
  # mock_data fakes the records but leaves the builder unprepared.
  monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    splits = mnist.load_splits("mnist")
  assert [split.shape for split in splits[:3]] == [(8, 784), (4, 784), (12, 784)] and splits.image_shape == (28, 28)
  assert all(split.dtype == np.float32 and 0.0 <= split.min() and split.max() <= 1.0 for split in splits[:3])
  assert splits.test.max() > 0.5
  assert "tensorflow" not in sys.modules


def test_missing_mnist_says_how_to_get_it_and_downloads_nothing(tmp_path):
  with pytest.raises(InputError, match=r"not prepared in .* nothing is downloaded.*tfds build mnist"):
    mnist.load_splits("mnist", str(tmp_path))
  assert os.listdir(tmp_path) == []
  with pytest.raises(InputError, match="unknown dataset 'cifar'"):
    mnist.load_splits("cifar")


@pytest.mark.slow
def test_cli_help_and_bad_input_exits_2_with_one_line(tmp_path):
  command = [sys.executable, "-m", "experiments.train_vae"]
  processes = [subprocess.Popen(command + arguments, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
               for arguments in (["--help"], ["--workdir", str(tmp_path / "run"), "--config.data.name=mnist",
                                              f"--config.data.data_dir={tmp_path}"])]
  (help_out, _), (_, error) = [process.communicate(timeout=120) for process in processes]
  assert processes[0].returncode == 0 and "--workdir" in help_out and "--config" in help_out
  assert processes[1].returncode == 2
  assert error.splitlines() == [f"error: MNIST is not prepared in {tmp_path} and nothing is downloaded; prepare it "
                                f"once with: tfds build mnist --file_format=array_record --data_dir {tmp_path} "
                                "(or pass the data dir that holds it)"]
