"""STFT, inverse STFT and Griffin-Lim in JAX (jit-able, batched).

Conventions follow `librosa.stft(center=True, pad_mode="constant")` with a
periodic Hann window, but spectrograms are time-major:
`stft: [..., n_frames, n_fft // 2 + 1] complex64`, n_frames = 1 + n // hop.

Framing and overlap-add are written as `ceil(n_fft / hop)` shifted slices of
hop-sized blocks instead of gathers or scatters: the cheapest form on CPU.
"""

import functools
import math

import jax
import jax.numpy as jnp
import librosa
import numpy as np

LOG_EPS = 1e-5  # added to a power before its log (the log-mel and log-power frontends, their leash)


def hann_window(n_fft):
  """[n_fft] float32 periodic Hann window (scipy's `get_window('hann')`)."""
  n = np.arange(n_fft)
  return jnp.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft), dtype=jnp.float32)


def _frame(signal, n_fft, hop, n_frames):
  """[..., n_padded] -> [..., n_frames, n_fft] overlapping frames."""
  overlaps = math.ceil(n_fft / hop)
  n_blocks = n_frames + overlaps - 1
  needed = n_blocks * hop
  pad = max(0, needed - signal.shape[-1])
  signal = jnp.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, pad)])[..., :needed]
  blocks = signal.reshape(signal.shape[:-1] + (n_blocks, hop))
  frames = jnp.concatenate([blocks[..., r:r + n_frames, :] for r in range(overlaps)], axis=-1)
  return frames[..., :n_fft]


def _overlap_add(frames, hop):
  """[..., n_frames, n_fft] -> [..., (n_frames - 1) * hop + n_fft] summed frames."""
  n_frames, n_fft = frames.shape[-2:]
  overlaps = math.ceil(n_fft / hop)
  padded = jnp.pad(frames, [(0, 0)] * (frames.ndim - 1) + [(0, overlaps * hop - n_fft)])
  blocks = padded.reshape(frames.shape[:-1] + (overlaps, hop))
  out = jnp.zeros(frames.shape[:-2] + (n_frames + overlaps - 1, hop), frames.dtype)
  for r in range(overlaps):
    out = out.at[..., r:r + n_frames, :].add(blocks[..., r, :])
  return out.reshape(out.shape[:-2] + (-1,))[..., :(n_frames - 1) * hop + n_fft]


@functools.partial(jax.jit, static_argnames=("n_fft", "hop"))
def stft(audio, n_fft=2048, hop=512):
  """Short-time Fourier transform.

  Args:
    audio: [..., n_samples] float32.
    n_fft: frame and FFT length in samples.
    hop: frame step in samples.

  Returns:
    [..., 1 + n_samples // hop, n_fft // 2 + 1] complex64, frames centred on
    t * hop (the signal is zero-padded by n_fft // 2 on both sides).
  """
  n_frames = 1 + audio.shape[-1] // hop
  padded = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(n_fft // 2, n_fft // 2)])
  frames = _frame(padded, n_fft, hop, n_frames) * hann_window(n_fft)
  return jnp.fft.rfft(frames, axis=-1)


@functools.lru_cache(maxsize=None)
def mel_filterbank(sample_rate, n_fft, n_mels):
  """[n_fft // 2 + 1, n_mels] float32 Slaney mel filters (`librosa.filters.mel`), 0 Hz to Nyquist."""
  return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).T.astype(np.float32)


def log_mel(audio, sample_rate, n_fft, hop, n_mels, eps):
  """Log mel power spectrogram, time-major.

  Equals `log(librosa.feature.melspectrogram(y=audio, sr=sample_rate,
  n_fft=n_fft, hop_length=hop, n_mels=n_mels, center=True,
  pad_mode="constant", power=2.0) + eps)`, transposed to frames first.

  Args:
    audio: [..., n_samples] float32 in [-1, 1].
    sample_rate: Hz.
    n_fft: STFT frame length in samples.
    hop: STFT hop in samples.
    n_mels: mel bands (Slaney filters from 0 Hz to Nyquist).
    eps: > 0, added to the mel power before the log.

  Returns:
    [..., 1 + n_samples // hop, n_mels] float32, natural log of the mel power
    (|STFT|^2 of the Hann-windowed frames through the mel filters) plus eps.
  """
  power = jnp.square(jnp.abs(stft(audio, n_fft, hop)))
  return jnp.log(power @ jnp.asarray(mel_filterbank(sample_rate, n_fft, n_mels)) + eps)


@functools.partial(jax.jit, static_argnames=("n_fft", "hop", "length"))
def istft(spectrogram, n_fft=2048, hop=512, length=None):
  """Inverse STFT by weighted overlap-add (least squares, as librosa).

  Args:
    spectrogram: [..., n_frames, n_fft // 2 + 1] complex.
    n_fft, hop: as for `stft`.
    length: output samples; default (n_frames - 1) * hop.

  Returns:
    [..., length] float32.
  """
  n_frames = spectrogram.shape[-2]
  window = hann_window(n_fft)
  frames = jnp.fft.irfft(spectrogram, n=n_fft, axis=-1).astype(jnp.float32) * window
  signal = _overlap_add(frames, hop)
  norm = _overlap_add(jnp.broadcast_to(window**2, (n_frames, n_fft)), hop)
  signal = signal / jnp.where(norm > np.finfo(np.float32).tiny, norm, 1.0)
  length = (n_frames - 1) * hop if length is None else length
  signal = signal[..., n_fft // 2:]
  missing = length - signal.shape[-1]
  if missing > 0:
    signal = jnp.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, missing)])
  return signal[..., :length]


@functools.partial(jax.jit, static_argnames=("n_fft", "hop", "length", "iterations"))
def griffin_lim(magnitude, key, n_fft=2048, hop=512, length=None, iterations=100,
                momentum=0.99, phase=None):
  """Phase reconstruction by (fast) Griffin-Lim, one compiled loop.

  With `momentum > 0` this is the accelerated variant of Perraudin et al.
  (2013), as in `librosa.griffinlim`; `momentum=0` is the original algorithm.

  Args:
    magnitude: [..., n_frames, n_fft // 2 + 1] float32 target |STFT|.
    key: PRNG key for the random initial phase (ignored if `phase` is given).
    n_fft, hop, length: as for `istft`.
    iterations: projections onto consistent spectrograms.
    momentum: in [0, 1).
    phase: optional [..., n_frames, n_bins] initial phase in radians.

  Returns:
    [..., length] float32 audio.
  """
  if phase is None:
    phase = jax.random.uniform(key, magnitude.shape, minval=0.0, maxval=2.0 * np.pi)
  angles = jnp.exp(1j * phase).astype(jnp.complex64)
  length = (magnitude.shape[-2] - 1) * hop if length is None else length
  eps = 1e-16

  def body(_, carry):
    angles, previous = carry
    rebuilt = stft(istft(magnitude * angles, n_fft, hop, length), n_fft, hop)
    accelerated = rebuilt - (momentum / (1.0 + momentum)) * previous
    return accelerated / (jnp.abs(accelerated) + eps), rebuilt

  angles, _ = jax.lax.fori_loop(0, iterations, body, (angles, jnp.zeros_like(angles)))
  return istft(magnitude * angles, n_fft, hop, length)


def spectral_convergence(audio, magnitude, n_fft=2048, hop=512):
  """|| |STFT(audio)| - magnitude ||_F / || magnitude ||_F (lower is better).

  Args:
    audio: [..., n_samples] float32.
    magnitude: [..., n_frames, n_fft // 2 + 1] target magnitude.

  Returns:
    [...] float32.
  """
  difference = jnp.abs(stft(audio, n_fft, hop)) - magnitude
  return jnp.linalg.norm(difference, axis=(-2, -1)) / jnp.linalg.norm(magnitude, axis=(-2, -1))
