"""Fundamental frequency (F0) estimation."""

import librosa
import numpy as np


def f0_track(audio, sample_rate, fmin=50.0, fmax=500.0):
  """Per-frame F0 by probabilistic YIN (librosa.pyin).

  Args:
    audio: [n_samples] float32 in [-1, 1].
    sample_rate: Hz.
    fmin, fmax: search range in Hz; the default spans male and female speech.

  Returns:
    [n_frames] float F0 in Hz, NaN where a frame is unvoiced; empty when the
    audio is shorter than one pYIN frame (1024 samples, 2048 above 24 kHz).
  """
  audio = np.asarray(audio, dtype=np.float32)
  frame_length = 2048 if sample_rate > 24000 else 1024
  if audio.shape[-1] < frame_length:
    return np.zeros(0)
  f0, voiced, _ = librosa.pyin(audio, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame_length)
  return np.where(voiced & np.isfinite(f0), f0, np.nan)


def median_f0(audio, sample_rate, fmin=50.0, fmax=500.0):
  """Median F0 in Hz over the voiced frames of `f0_track` (same arguments); NaN when none is voiced."""
  return track_summary(f0_track(audio, sample_rate, fmin, fmax))[0]


def track_summary(track):
  """(median F0 in Hz over voiced frames or NaN, share of frames voiced in [0, 1]) of an `f0_track`."""
  voiced = track[np.isfinite(track)]
  if not voiced.size:
    return float("nan"), 0.0
  return float(np.median(voiced)), voiced.size / track.size


def voiced_share_of_active(audio, sample_rate, track, threshold_db=-40.0):
  """Share in [0, 1] of the active frames of `f0_track(audio, ...)` that are voiced (NaN if none is active).

  A pYIN frame (its 1024- or 2048-sample window, centred on frame k x hop)
  is active when its RMS is above `threshold_db` dB full scale.
  """
  frame_length = 2048 if sample_rate > 24000 else 1024
  hop = frame_length // 4
  padded = np.pad(np.asarray(audio, np.float64), frame_length // 2)
  windows = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop][:len(track)]
  active = np.sqrt(np.mean(windows ** 2, axis=1)) > 10 ** (threshold_db / 20)
  if not active.any():
    return float("nan")
  return float(np.mean(np.isfinite(track[:len(active)][active])))
