"""Fundamental frequency (F0) estimation."""

import librosa
import numpy as np


def median_f0(audio, sample_rate, fmin=50.0, fmax=500.0):
  """Median F0 over voiced frames, by probabilistic YIN (librosa.pyin).

  Args:
    audio: [n_samples] float32 in [-1, 1].
    sample_rate: Hz.
    fmin, fmax: search range in Hz; the default spans male and female speech.

  Returns:
    Median F0 in Hz as a float, NaN when no frame is voiced.
  """
  audio = np.asarray(audio, dtype=np.float32)
  frame_length = 2048 if sample_rate > 24000 else 1024
  if audio.shape[-1] < frame_length:
    return float("nan")
  f0, voiced, _ = librosa.pyin(audio, fmin=fmin, fmax=fmax, sr=sample_rate,
                               frame_length=frame_length)
  voiced_f0 = f0[voiced & np.isfinite(f0)]
  return float(np.median(voiced_f0)) if voiced_f0.size else float("nan")
