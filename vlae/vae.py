"""A general VAE: any Gaussian encoder, a N(0, I) or autoregressive-flow prior, any decoder.

    encoder(x) -> DiagonalGaussian q(z|x), parameters [B, *latent]
    decoder(z, x=None) -> distribution over x with log_prob(x) -> [B]; an
        autoregressive decoder teacher-forces on x, others ignore it
    prior: StandardNormalPrior() or AutoregressiveFlowPrior(...)

Training maximises the ELBO, log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),
with KL warm-up and free bits (Kingma et al. 2016); evaluation uses the
importance-weighted bound (Burda et al. 2016) with k samples as the NLL estimate.
"""

import math

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vlae import distributions


def _sum_trailing(values, ndims):
  """Sums the last `ndims` axes."""
  return jnp.sum(values, axis=tuple(range(values.ndim - ndims, values.ndim)))


class StandardNormalPrior(nn.Module):
  """p(z) = N(0, I); the KL to a diagonal-Gaussian posterior is analytic."""

  def log_prob_per_dim(self, z):
    """z: [..., D] -> [..., D] nats per element."""
    return distributions.standard_normal_like(z).log_prob_per_dim(z)

  def kl_per_dim(self, q, z):
    """Analytic KL(q || N(0, I)): [*batch, *latent] nats; the draw z is unused."""
    del z
    return distributions.kl_divergence(q, distributions.standard_normal_like(q.mean, q.event_ndims))

  def sample_from_noise(self, noise):
    """noise: [..., D] from N(0, I) -> z: [..., D]."""
    return noise


class MADE(nn.Module):
  """One-hidden-layer masked autoencoder (Germain et al. 2015) giving affine parameters.

  Output d sees only the inputs before d in the order 0, 1, ..., D-1 (or the
  reverse when `reverse`). The output kernels start at zero, so a fresh layer
  is the identity.
  """
  hidden_features: int
  reverse: bool = False

  @nn.compact
  def __call__(self, z):
    """z: [..., D] -> (shift [..., D], log_scale [..., D]), each entry d a function of z_<d."""
    size = z.shape[-1]
    input_degrees = np.arange(size, 0, -1) if self.reverse else np.arange(1, size + 1)
    hidden_degrees = np.arange(self.hidden_features) % max(size - 1, 1) + 1
    hidden_mask = (hidden_degrees[None, :] >= input_degrees[:, None]).astype(np.float32)  # [D, H]
    output_mask = (input_degrees[None, :] > hidden_degrees[:, None]).astype(np.float32)  # [H, D]
    hidden_kernel = self.param("hidden_kernel", nn.initializers.lecun_normal(), (size, self.hidden_features))
    hidden_bias = self.param("hidden_bias", nn.initializers.zeros, (self.hidden_features,))
    shift_kernel = self.param("shift_kernel", nn.initializers.zeros, (self.hidden_features, size))
    shift_bias = self.param("shift_bias", nn.initializers.zeros, (size,))
    log_scale_kernel = self.param("log_scale_kernel", nn.initializers.zeros, (self.hidden_features, size))
    log_scale_bias = self.param("log_scale_bias", nn.initializers.zeros, (size,))
    hidden = nn.relu(z @ (hidden_kernel * hidden_mask) + hidden_bias)
    shift = hidden @ (shift_kernel * output_mask) + shift_bias
    return shift, hidden @ (log_scale_kernel * output_mask) + log_scale_bias


class AutoregressiveFlowPrior(nn.Module):
  """Learned prior z = f(eps), eps ~ N(0, I): the AF prior of the VLAE (Chen et al. 2016).

  f^-1 is a stack of affine autoregressive layers u -> (u - shift(u)) exp(-log_scale(u)),
  with shift_d and log_scale_d functions of u_<d (a MADE); the order reverses
  from layer to layer. The density, log p(z) = log N(f^-1(z); 0, I) -
  sum over layers of log_scale, takes one parallel pass; sampling inverts
  each layer in D sequential passes. Each layer keeps every coordinate in
  place, so log p(z) splits into one term per coordinate.
  """
  num_layers: int = 2
  hidden_features: int = 64

  def setup(self):
    self.layers = [MADE(self.hidden_features, reverse=bool(index % 2)) for index in range(self.num_layers)]

  def log_prob_per_dim(self, z):
    """z: [..., D] -> [..., D] nats whose sum over D is log p(z)."""
    log_det = jnp.zeros_like(z)
    for layer in self.layers:
      shift, log_scale = layer(z)
      z = (z - shift) * jnp.exp(-log_scale)
      log_det = log_det - log_scale
    return distributions.standard_normal_like(z).log_prob_per_dim(z) + log_det

  def kl_per_dim(self, q, z):
    """One-draw estimate log q(z|x) - log p(z) per element: [*batch, *latent] nats."""
    return q.log_prob_per_dim(z) - self.log_prob_per_dim(z)

  def sample_from_noise(self, noise):
    """noise: [..., D] from N(0, I) -> z = f(noise): [..., D]."""
    # Going to eps, each layer maps its input u to (u - shift(u)) exp(-log_scale(u)); undo them last first.
    layer_output = noise
    for layer in reversed(self.layers):
      layer_input = layer_output
      for _ in range(noise.shape[-1]):  # Pass d fixes the coordinate of degree d.
        shift, log_scale = layer(layer_input)
        layer_input = layer_output * jnp.exp(log_scale) + shift
      layer_output = layer_input
    return layer_output


@flax.struct.dataclass
class ElboTerms:
  """The two ELBO terms for one draw z ~ q(z|x) per example.

  reconstruction: [B] log p(x|z) nats.
  kl_per_dim: [B, *latent] KL(q(z|x) || p(z)) per latent element, nats
    (analytic for the N(0, I) prior, the one-draw estimate for a flow prior).
  """
  reconstruction: jax.Array
  kl_per_dim: jax.Array


class VAE(nn.Module):
  """q(z|x) = encoder(x), p(z) = prior, p(x|z) = decoder(z, x)."""
  encoder: nn.Module
  decoder: nn.Module
  prior: nn.Module

  def __call__(self, x, key):
    """x: [B, ...], key: PRNG key for z ~ q(z|x) -> ElboTerms."""
    q = self.encoder(x)
    z = q.sample(key)
    return ElboTerms(reconstruction=self.decoder(z, x).log_prob(x), kl_per_dim=self.prior.kl_per_dim(q, z))

  def log_importance_weights(self, x, keys):
    """log p(x, z_i) - log q(z_i|x) for one z_i ~ q(z|x) per key.

    Args:
      x: [B, ...] data.
      keys: [k] PRNG keys; draw i depends on keys[i] alone.

    Returns:
      [k, B] float32 nats.
    """
    q = self.encoder(x)
    z = q.sample_from_noise(jax.vmap(lambda key: jax.random.normal(key, q.mean.shape))(keys))  # [k, B, *latent]
    num_draws, batch = z.shape[:2]
    flat_z = z.reshape((num_draws * batch,) + z.shape[2:])
    flat_x = jnp.broadcast_to(x, (num_draws,) + x.shape).reshape((num_draws * batch,) + x.shape[1:])
    log_likelihood = self.decoder(flat_z, flat_x).log_prob(flat_x).reshape(num_draws, batch)
    log_prior = _sum_trailing(self.prior.log_prob_per_dim(z), q.event_ndims)
    return log_likelihood + log_prior - q.log_prob(z)

  def reconstruct(self, x):
    """p(x|z) at the posterior mode z = mean of q(z|x); x: [B, ...]."""
    return self.decoder(self.encoder(x).mode(), x)

  def generate(self, noise):
    """p(x|z) at the prior draw z = f(noise), noise: [N, *latent] from N(0, I).

    Only for decoders that read no x (not autoregressive ones).
    """
    return self.decoder(self.prior.sample_from_noise(noise))


def kl_warmup_weight(step, warmup_steps):
  """beta: [] float32 rising linearly from 0 at step 0 to 1 at `warmup_steps` (1 if that is 0)."""
  if warmup_steps <= 0:
    return jnp.ones((), jnp.float32)
  return jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)


def free_bits_kl(kl_per_dim, free_bits):
  """sum_d max(mean over the batch of KL_d, free_bits): [B, *latent] -> [] nats per example.

  A latent element whose batch-mean KL is under the floor costs the floor
  and gets no gradient, so the optimiser stops squeezing it shut. With
  free_bits <= 0 there is no floor and this is the plain mean KL, even where a
  one-draw estimate (the flow prior's) is negative for some elements.
  """
  kl_per_dim = jnp.mean(kl_per_dim, axis=0)
  if free_bits <= 0:
    return jnp.sum(kl_per_dim)
  return jnp.sum(jnp.maximum(kl_per_dim, free_bits))


@flax.struct.dataclass
class VAELoss:
  """The training objective and its parts, all in nats.

  objective: [] minimised: -mean reconstruction + beta * kl_free_bits.
  elbo: [B] reconstruction - kl (no warm-up, no floor): the bound on log p(x).
  reconstruction: [B] log p(x|z), one z ~ q(z|x).
  kl: [B] KL(q(z|x) || p(z)) summed over latent elements.
  kl_free_bits: [] the KL with the free-bits floor, per example.
  beta: [] the warm-up weight on the KL.
  """
  objective: jax.Array
  elbo: jax.Array
  reconstruction: jax.Array
  kl: jax.Array
  kl_free_bits: jax.Array
  beta: jax.Array


def vae_loss(model, params, x, key, step, kl_warmup_steps=0, free_bits=0.0):
  """The negative ELBO with KL warm-up and free bits.

  Args:
    model: a VAE.
    params: its variables.
    x: [B, ...] data.
    key: PRNG key for the draws z ~ q(z|x).
    step: [] int training step (sets the warm-up weight).
    kl_warmup_steps: steps over which beta rises from 0 to 1.
    free_bits: per-latent-element KL floor lambda, nats.

  Returns:
    VAELoss.
  """
  terms = model.apply(params, x, key)

  # Reconstruction: E_q(z|x)[log p(x|z)], one draw per example.
  reconstruction = terms.reconstruction

  # KL: KL(q(z|x) || p(z)), summed over the latent elements.
  kl = jnp.sum(terms.kl_per_dim.reshape(terms.kl_per_dim.shape[0], -1), axis=-1)

  # Objective: the KL under warm-up weight beta, floored per element by free bits.
  beta = kl_warmup_weight(step, kl_warmup_steps)
  kl_free_bits = free_bits_kl(terms.kl_per_dim, free_bits)
  objective = -jnp.mean(reconstruction) + beta * kl_free_bits

  return VAELoss(objective=objective, elbo=reconstruction - kl, reconstruction=reconstruction, kl=kl,
                 kl_free_bits=kl_free_bits, beta=beta)


@flax.struct.dataclass
class ImportanceBound:
  """Bounds on log p(x) from the same k draws z_i ~ q(z|x), w_i = p(x, z_i) / q(z_i|x).

  iwae: [B] log (1/k) sum_i w_i nats; the IWAE bound, whose negative is the
    NLL estimate (tends to log p(x) as k grows).
  elbo: [B] (1/k) sum_i log w_i nats; the ELBO estimated with k draws.
  """
  iwae: jax.Array
  elbo: jax.Array


def importance_weighted_bound(model, params, x, key, num_samples, chunk_size=None):
  """IWAE-k and ELBO estimates of log p(x), drawing k samples `chunk_size` at a time.

  A running log-sum-exp keeps memory at one chunk, so k = 5000 fits; draw i
  uses fold_in(key, i), so the result does not depend on the chunk size.

  Args:
    model: a VAE.
    params: its variables.
    x: [B, ...] data.
    key: PRNG key.
    num_samples: k >= 1.
    chunk_size: draws per decoder call (default all k).

  Returns:
    ImportanceBound.
  """
  chunk = min(chunk_size or num_samples, num_samples)
  num_chunks = math.ceil(num_samples / chunk)
  batch = x.shape[0]

  def add_chunk(carry, chunk_index):
    log_sum, log_weight_sum = carry
    indices = chunk_index * chunk + jnp.arange(chunk)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)
    log_weights = model.apply(params, x, keys, method=VAE.log_importance_weights)
    drawn = (indices < num_samples)[:, None]  # The last chunk may run past k.
    log_sum = jnp.logaddexp(log_sum, jax.nn.logsumexp(jnp.where(drawn, log_weights, -jnp.inf), axis=0))
    return (log_sum, log_weight_sum + jnp.sum(jnp.where(drawn, log_weights, 0.0), axis=0)), None

  start = (jnp.full((batch,), -jnp.inf, jnp.float32), jnp.zeros((batch,), jnp.float32))
  (log_sum, log_weight_sum), _ = jax.lax.scan(add_chunk, start, jnp.arange(num_chunks))
  return ImportanceBound(iwae=log_sum - math.log(num_samples), elbo=log_weight_sum / num_samples)
