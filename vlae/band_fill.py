"""Filling in the log-mel bands a band-limited recording lacks, before the frame VLAE encodes it.

A recording made at 8 kHz (telephone audio, flite's kal) has silent log-mel
bands above 4 kHz, which no training frame has. The encoder then reads it as
out of distribution: its posterior mean lies far out (|z| 2.8 against about
1.5) and ignores pitch. kal's F0 shifted to 69-110 Hz decodes at 106-123 Hz,
and a held-out male at 104 Hz decodes at 99 Hz at full band but at 115 Hz
low-passed at 4 kHz (docs/vae_vlae.md).

Each missing band is given its conditional mean under a Gaussian fitted to
the training frames, one for voiced and one for unvoiced frames, given the
frame's energy and the bands it holds (`fill`). The Gaussians are fitted once
per training run (`fit`) and kept with the checkpoint (its labels'
"band_statistics").
"""

import numpy as np

from vocoder.features import ENERGY_CHANNEL, FIRST_MEL_CHANNEL, VOICED_CHANNEL


def _classes(vectors):
  """(("voiced", rows [F] bool), ("unvoiced", rows)) of frame vectors [F, C]."""
  voiced = vectors[:, VOICED_CHANNEL] > 0.5
  return ("voiced", voiced), ("unvoiced", ~voiced)


def fit(vectors):
  """{"voiced" | "unvoiced": {"mean": [C], "covariance": [C][C]}} (JSON-able) of frame vectors [F, C]."""
  statistics = {}
  for name, rows in _classes(vectors):
    chosen = np.asarray(vectors[rows], np.float64)
    statistics[name] = {"mean": chosen.mean(axis=0).tolist(), "covariance": np.cov(chosen, rowvar=False).tolist()}
  return statistics


def fill(vectors, observed_bands, statistics):
  """Frame vectors [F, C] whose log-mel bands from `observed_bands` up are replaced by their conditional means.

  Args:
    vectors: [F, C] float32 frame vectors of one recording.
    observed_bands: how many of the lowest bands the recording holds (`dsp.frames.observed_bands`).
    statistics: `fit`'s output.

  Returns:
    [F, C] float32; the other channels unchanged.
  """
  given = np.r_[ENERGY_CHANNEL, FIRST_MEL_CHANNEL:FIRST_MEL_CHANNEL + observed_bands]
  missing = np.arange(FIRST_MEL_CHANNEL + observed_bands, vectors.shape[1])
  filled = np.array(vectors, np.float32)
  for name, rows in _classes(vectors):
    mean, covariance = np.asarray(statistics[name]["mean"]), np.asarray(statistics[name]["covariance"])
    gain = np.linalg.solve(covariance[np.ix_(given, given)], covariance[np.ix_(given, missing)]).T  # [missing, given]
    filled[np.ix_(rows, missing)] = mean[missing] + (vectors[np.ix_(rows, given)] - mean[given]) @ gain.T
  return filled
