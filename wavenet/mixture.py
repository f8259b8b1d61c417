"""Discretized mixture of logistics over mu-law audio (PixelCNN++ / Parallel WaveNet).

Values live on the grid of `num_classes` bin centres in [-1, 1]; the edge bins
take the whole tails, so the probabilities of all bins sum to one.
"""

import jax
import jax.numpy as jnp


def split_params(params):
  """[..., 3M] -> (logit_weights, means, log_scales), each [..., M]."""
  logit_weights, means, log_scales = jnp.split(params, 3, axis=-1)
  return logit_weights, jnp.tanh(means), jnp.maximum(log_scales, -7.0)


def log_prob(params, codes, num_classes=256):
  """Log-probability of integer codes under the discretized mixture.

  Args:
    params: [..., 3M] unconstrained head outputs for M components.
    codes: [...] int32 in [0, num_classes).

  Returns:
    [...] float32 log-probabilities in nats.
  """
  logit_weights, means, log_scales = split_params(params)
  value = (2.0 * codes.astype(jnp.float32) / (num_classes - 1) - 1.0)[..., None]
  half_bin = 1.0 / (num_classes - 1)
  inverse_scale = jnp.exp(-log_scales)
  centred = value - means
  upper = inverse_scale * (centred + half_bin)
  lower = inverse_scale * (centred - half_bin)
  log_cdf_upper = jax.nn.log_sigmoid(upper)
  log_one_minus_cdf_lower = -jax.nn.softplus(lower)
  cdf_delta = jax.nn.sigmoid(upper) - jax.nn.sigmoid(lower)
  mid = inverse_scale * centred
  log_pdf_mid = mid - log_scales - 2.0 * jax.nn.softplus(mid) + jnp.log(2.0 * half_bin)
  log_mass = jnp.where(cdf_delta > 1e-5, jnp.log(jnp.maximum(cdf_delta, 1e-12)), log_pdf_mid)
  log_mass = jnp.where(value < -0.999, log_cdf_upper,
                       jnp.where(value > 0.999, log_one_minus_cdf_lower, log_mass))
  return jax.nn.logsumexp(log_mass + jax.nn.log_softmax(logit_weights, axis=-1), axis=-1)


def sample(key, params, num_classes=256, temperature=1.0):
  """Draws integer codes: [..., 3M] params -> [...] int32 in [0, num_classes)."""
  uniforms = jax.random.uniform(key, params.shape[:-1] + (2,))
  return sample_from_uniforms(params, uniforms, num_classes, temperature)


def sample_from_uniforms(params, uniforms, num_classes=256, temperature=1.0):
  """Inverse-CDF draw from given noise (lets a sampler precompute all its randomness).

  Args:
    params: [..., 3M] head outputs.
    uniforms: [..., 2] float32 in [0, 1): component choice, logistic noise.
    temperature: scales the component logits and the logistic scales; 0 < t;
      a scalar or an array of shape [...] (one per draw).

  Returns:
    [...] int32 codes.
  """
  logit_weights, means, log_scales = split_params(params)
  temperature = jnp.broadcast_to(jnp.asarray(temperature, jnp.float32), uniforms.shape[:-1])
  weights = jax.nn.softmax(logit_weights / jnp.maximum(temperature, 1e-6)[..., None], axis=-1)
  component = jnp.sum(jnp.cumsum(weights, axis=-1)[..., :-1] < uniforms[..., :1], axis=-1)
  mean = jnp.take_along_axis(means, component[..., None], axis=-1)[..., 0]
  log_scale = jnp.take_along_axis(log_scales, component[..., None], axis=-1)[..., 0]
  u = jnp.clip(uniforms[..., 1], 1e-5, 1.0 - 1e-5)
  value = mean + temperature * jnp.exp(log_scale) * (jnp.log(u) - jnp.log1p(-u))
  codes = jnp.round((jnp.clip(value, -1.0, 1.0) + 1.0) * (num_classes - 1) / 2.0)
  return codes.astype(jnp.int32)


def mode(params, num_classes=256):
  """Code of the most probable bin, evaluated over all bins: [..., 3M] -> [...] int32."""
  grid = jnp.arange(num_classes, dtype=jnp.int32)
  log_probs = log_prob(params[..., None, :], grid, num_classes)
  return jnp.argmax(log_probs, axis=-1).astype(jnp.int32)
