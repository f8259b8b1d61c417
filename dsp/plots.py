"""Spectrogram figures written as PNG (matplotlib loaded on first use: `common.figures`)."""

import numpy as np

from common.figures import pyplot, save_figure
from dsp import spectral


def log_spectrogram_db(audio, n_fft=1024, hop=256):
  """[n_samples] float32 -> [n_bins, n_frames] float32 magnitude in dB (peak 0 dB)."""
  magnitude = np.abs(np.asarray(spectral.stft(np.asarray(audio, np.float32), n_fft, hop))).T
  return 20.0 * np.log10(np.maximum(magnitude, 1e-5 * max(magnitude.max(), 1e-10)) / max(magnitude.max(), 1e-10))


def plot_spectrogram(axis, audio, sample_rate, title="", n_fft=1024, hop=256):
  """Draws a dB spectrogram of `audio: [n_samples]` on a matplotlib axis."""
  spectrogram = log_spectrogram_db(audio, n_fft, hop)
  duration = len(audio) / sample_rate
  image = axis.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                      extent=(0.0, duration, 0.0, sample_rate / 2000.0))
  axis.set_xlabel("time (s)")
  axis.set_ylabel("frequency (kHz)")
  axis.set_title(title)
  return image


def save_spectrogram_png(path, audio, sample_rate, title=""):
  """Writes one spectrogram of `audio: [n_samples] float32` to `path` (PNG)."""
  figure, axis = pyplot().subplots(figsize=(8, 3))
  image = plot_spectrogram(axis, audio, sample_rate, title)
  figure.colorbar(image, ax=axis, label="dB")
  save_figure(figure, path)


def save_spectrograms_png(path, clips, sample_rate):
  """Writes stacked spectrograms, one row per `(title, audio)` in `clips`."""
  figure, axes = pyplot().subplots(len(clips), 1, figsize=(8, 2.5 * len(clips)), squeeze=False)
  for axis, (title, audio) in zip(axes[:, 0], clips):
    plot_spectrogram(axis, audio, sample_rate, title)
  figure.tight_layout()
  save_figure(figure, path)
