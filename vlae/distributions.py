"""Distributions returned by encoders, decoders and priors.

Each is a `flax.struct.dataclass` (a pytree, so it can leave a jitted
function) with `log_prob(x)`, `sample(key)` and `mode()`. Its parameters have
shape [*batch, *event] (plus a trailing parameter axis for the categorical
and the mixture); `log_prob` sums over the last `event_ndims` axes of x, so
for `event_ndims=1` and x: [B, N] it returns [B] nats. All log-probabilities
are float32 nats.
"""

import math

import flax
import jax
import jax.numpy as jnp

from wavenet import mixture

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _sum_event(values, event_ndims):
  """Sums the last `event_ndims` axes: [*batch, *event] -> [*batch]."""
  return jnp.sum(values, axis=tuple(range(values.ndim - event_ndims, values.ndim)))


@flax.struct.dataclass
class Bernoulli:
  """Independent Bernoulli pixels.

  logits: [*batch, *event] float32 log-odds of a 1.
  """
  logits: jax.Array
  event_ndims: int = flax.struct.field(pytree_node=False, default=1)

  def log_prob(self, x):
    """x: [*batch, *event] float32 in {0, 1} -> [*batch] nats.

    Fractional x in [0, 1] gives the binary cross-entropy against grey levels.
    """
    return _sum_event(x * jax.nn.log_sigmoid(self.logits) + (1.0 - x) * jax.nn.log_sigmoid(-self.logits),
                      self.event_ndims)

  def sample(self, key):
    """[*batch, *event] float32 in {0, 1}."""
    return jax.random.bernoulli(key, jax.nn.sigmoid(self.logits)).astype(jnp.float32)

  def mode(self):
    """[*batch, *event] float32 in {0, 1} (1 where p > 1/2)."""
    return (self.logits > 0).astype(jnp.float32)

  def mean(self):
    """[*batch, *event] float32 probabilities of a 1."""
    return jax.nn.sigmoid(self.logits)


@flax.struct.dataclass
class DiagonalGaussian:
  """Independent normals.

  mean: [*batch, *event] float32.
  log_scale: [*batch, *event] float32 log standard deviation.
  """
  mean: jax.Array
  log_scale: jax.Array
  event_ndims: int = flax.struct.field(pytree_node=False, default=1)

  def log_prob_per_dim(self, x):
    """x: [..., *batch, *event] -> [..., *batch, *event] nats per element (leading axes broadcast)."""
    standardized = (x - self.mean) * jnp.exp(-self.log_scale)
    return -0.5 * jnp.square(standardized) - self.log_scale - _LOG_SQRT_2PI

  def log_prob(self, x):
    """x: [..., *batch, *event] -> [..., *batch] nats."""
    return _sum_event(self.log_prob_per_dim(x), self.event_ndims)

  def sample_from_noise(self, noise):
    """The reparameterised draw mean + scale * noise; noise: [..., *batch, *event] from N(0, 1)."""
    return self.mean + jnp.exp(self.log_scale) * noise

  def sample(self, key, sample_shape=()):
    """[*sample_shape, *batch, *event] float32."""
    return self.sample_from_noise(jax.random.normal(key, tuple(sample_shape) + self.mean.shape))

  def mode(self):
    """[*batch, *event] float32: the mean."""
    return self.mean


def standard_normal_like(x, event_ndims=1):
  """N(0, I) with the shape of x: [*batch, *event]."""
  return DiagonalGaussian(jnp.zeros_like(x), jnp.zeros_like(x), event_ndims)


def kl_divergence(q, p):
  """Analytic KL(q || p) between diagonal Gaussians, per element: [*batch, *event] nats (not summed)."""
  log_ratio = q.log_scale - p.log_scale
  return 0.5 * (jnp.exp(2.0 * log_ratio) + jnp.square((q.mean - p.mean) * jnp.exp(-p.log_scale)) - 1.0) - log_ratio


@flax.struct.dataclass
class Categorical:
  """Independent categoricals, e.g. over 256 mu-law codes.

  logits: [*batch, *event, num_classes] float32 unnormalised log-probabilities.
  """
  logits: jax.Array
  event_ndims: int = flax.struct.field(pytree_node=False, default=1)

  def log_prob(self, x):
    """x: [..., *batch, *event] int32 in [0, num_classes) -> [..., *batch] nats (leading axes broadcast)."""
    log_probs = jax.nn.log_softmax(self.logits, axis=-1)
    log_probs = jnp.broadcast_to(log_probs, x.shape + log_probs.shape[-1:])
    return _sum_event(jnp.take_along_axis(log_probs, x[..., None], axis=-1)[..., 0], self.event_ndims)

  def sample(self, key):
    """[*batch, *event] int32."""
    return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

  def mode(self):
    """[*batch, *event] int32 most probable class."""
    return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)


@flax.struct.dataclass
class DiscretizedLogisticMixture:
  """Discretized mixture of logistics over integer codes (`wavenet.mixture`).

  params: [*batch, *event, 3M] unconstrained head outputs for M components.
  """
  params: jax.Array
  num_classes: int = flax.struct.field(pytree_node=False, default=256)
  event_ndims: int = flax.struct.field(pytree_node=False, default=1)

  def log_prob(self, x):
    """x: [*batch, *event] int32 in [0, num_classes) -> [*batch] nats."""
    return _sum_event(mixture.log_prob(self.params, x, self.num_classes), self.event_ndims)

  def sample(self, key):
    """[*batch, *event] int32."""
    return mixture.sample(key, self.params, self.num_classes)

  def mode(self):
    """[*batch, *event] int32 most probable code."""
    return mixture.mode(self.params, self.num_classes)
