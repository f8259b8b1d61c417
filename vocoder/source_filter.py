"""A non-autoregressive source-filter vocoder (after NSF, Wang, Takaki & Yamagishi 2020): the baseline.

The source is a sum of harmonics of the frame F0 where voiced plus Gaussian
noise everywhere; a stack of non-causal dilated convolutions, conditioned on
the frame vectors, filters it into the waveform in one pass. Trained on a
multi-resolution STFT loss (spectral convergence plus log-magnitude
distance), which ignores phase, so the source needs no alignment with the
recording. Voiced by construction: its pitch is the source's.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from corpora.schema import SAMPLE_RATE
from dsp import spectral
from vocoder import features as features_lib

STFT_RESOLUTIONS = ((512, 128), (1024, 256), (256, 64))  # (n_fft, hop) pairs of the loss
_EPS = 1e-5  # magnitude floor inside the log


class SourceFilter(nn.Module):
  """Frame vectors and the sine source -> waveform, in one non-causal pass."""
  channels: int = 32  # width of the filter network
  num_blocks: int = 2  # repetitions of the dilation cycle
  layers_per_block: int = 8  # dilations 1 .. 2**(layers_per_block - 1) per block
  kernel_size: int = 3  # taps per dilated convolution (centred)
  num_harmonics: int = 16  # harmonics of F0 in the source (those above Nyquist are left out)
  harmonic_amplitude: float = 0.1  # amplitude of each harmonic
  noise_std: float = 0.03  # std of the noise added to the source
  architecture: str = "source_filter"  # tells this model's checkpoints from a WaveNet's

  def harmonic_source(self, local, excitation):
    """[B, T, num_harmonics] sin(k phase) for k = 1 ... K, zero where unvoiced or above Nyquist.

    Built from the excitation's sine and cosine by the Chebyshev recursion
    sin((k + 1) p) = 2 cos(p) sin(k p) - sin((k - 1) p).
    """
    sine, cosine = excitation[..., 0], excitation[..., 1]
    f0 = jnp.exp(local[..., 0] * features_lib.LOG_F0_SCALE + features_lib.LOG_F0_CENTRE)
    harmonics, previous, current = [], jnp.zeros_like(sine), sine
    for k in range(1, self.num_harmonics + 1):
      harmonics.append(jnp.where(k * f0 < SAMPLE_RATE / 2, current, 0.0))
      previous, current = current, 2.0 * cosine * current - previous
    return jnp.stack(harmonics, axis=-1)

  @nn.compact
  def __call__(self, local, excitation, noise):
    """Synthesis.

    Args:
      local: [B, T, LOCAL_CHANNELS] frame vectors at the sample rate.
      excitation: [B, T, 3] the source (`dsp.excitation.excitation`).
      noise: [B, T] standard normal noise.

    Returns:
      [B, T] float32 waveform in (-1, 1).
    """
    source = jnp.concatenate([self.harmonic_amplitude * self.harmonic_source(local, excitation),
                              self.noise_std * noise[..., None]], axis=-1)
    x = nn.Dense(self.channels, name="source_projection")(source)
    condition = nn.Dense(self.channels, name="condition_projection")(local)
    for block in range(self.num_blocks):
      for layer in range(self.layers_per_block):
        name = f"block{block}_layer{layer}"
        pre = nn.Conv(2 * self.channels, (self.kernel_size,), kernel_dilation=(2 ** layer,), padding="SAME",
                      name=f"{name}_conv")(x)
        pre = pre + nn.Dense(2 * self.channels, name=f"{name}_condition")(condition)
        filter_, gate = jnp.split(pre, 2, axis=-1)
        x = x + nn.Dense(self.channels, name=f"{name}_residual")(jnp.tanh(filter_) * jax.nn.sigmoid(gate))
    hidden = jax.nn.relu(nn.Dense(self.channels, name="output_hidden")(x))
    return jnp.tanh(nn.Dense(1, name="output")(hidden)[..., 0])


def build_source_filter(model_config):
  """A SourceFilter from a dict of its fields (a ConfigDict, or JSON read back from a checkpoint)."""
  fields = {field.name for field in dataclasses.fields(SourceFilter) if field.name not in ("parent", "name")}
  return SourceFilter(**{k: v for k, v in dict(model_config).items() if k in fields})


def multi_resolution_stft_loss(target, output, weight):
  """Sum over STFT_RESOLUTIONS of spectral convergence plus log-magnitude distance.

  Spectral convergence ||S - S'|| / ||S|| (Frobenius norms of the magnitudes)
  is taken over the whole batch, so that a near-silent window cannot blow it
  up; the log-magnitude term is the weighted mean over windows of mean
  |log S - log S'|.

  Args:
    target, output: [B, T] float32 audio.
    weight: [B] float32 row weights (0 for padding rows).

  Returns:
    (scalar loss, {"spectral_convergence", "log_magnitude"}).
  """
  convergence, log_magnitude = 0.0, 0.0
  for n_fft, hop in STFT_RESOLUTIONS:
    target_mag = jnp.abs(spectral.stft(target, n_fft, hop))
    output_mag = jnp.abs(spectral.stft(output, n_fft, hop))
    error = jnp.sum(weight * jnp.sum(jnp.square(target_mag - output_mag), axis=(-2, -1)))
    reference = jnp.sum(weight * jnp.sum(jnp.square(target_mag), axis=(-2, -1)))
    convergence += jnp.sqrt(error) / (jnp.sqrt(reference) + _EPS)
    per_window = jnp.mean(jnp.abs(jnp.log(target_mag + _EPS) - jnp.log(output_mag + _EPS)), axis=(-2, -1))
    log_magnitude += jnp.sum(weight * per_window) / jnp.sum(weight)
  return convergence + log_magnitude, {"spectral_convergence": convergence, "log_magnitude": log_magnitude}


def make_loss_fn(model):
  """`(params, batch, key, *, step, train) -> (loss, metrics)`; batch: audio [B, T], local, excitation,
  optional weight [B]; the same noise-driven loss in training and evaluation."""
  def loss_fn(params, batch, key, *, step, train):
    del step, train
    noise = jax.random.normal(key, batch["audio"].shape)
    output = model.apply(params, batch["local"], batch["excitation"], noise)
    weight = batch.get("weight", jnp.ones(batch["audio"].shape[:1], jnp.float32))
    return multi_resolution_stft_loss(batch["audio"], output, weight)
  return loss_fn
