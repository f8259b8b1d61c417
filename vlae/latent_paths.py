"""Paths between two latents, for interpolation (both VLAEs)."""

import numpy as np

from common.errors import InputError


def interpolation_path(z_start, z_end, steps, mode):
  """`steps` points from z_start to z_end (both included): [D] -> [steps, D] float32.

  mode "lerp" follows the straight line; "slerp" the great circle, the
  norm interpolated linearly (the straight line when the two are parallel).
  """
  if steps < 2:
    raise InputError(f"--steps must be at least 2, got {steps}")
  if mode not in ("lerp", "slerp"):
    raise InputError(f"unknown mode {mode!r}; known: lerp, slerp")
  z_start, z_end = np.asarray(z_start, np.float64), np.asarray(z_end, np.float64)
  fractions = np.linspace(0.0, 1.0, steps)[:, None]
  linear = (1.0 - fractions) * z_start + fractions * z_end
  norm_start, norm_end = np.linalg.norm(z_start), np.linalg.norm(z_end)
  if mode == "lerp" or min(norm_start, norm_end) == 0.0:
    path = linear
  else:
    cosine = np.clip(np.dot(z_start, z_end) / (norm_start * norm_end), -1.0, 1.0)
    angle = np.arccos(cosine)
    if np.sin(angle) < 1e-6:
      path = linear
    else:
      unit_start, unit_end = z_start / norm_start, z_end / norm_end
      direction = (np.sin((1.0 - fractions) * angle) * unit_start + np.sin(fractions * angle) * unit_end) / np.sin(angle)
      path = direction * ((1.0 - fractions) * norm_start + fractions * norm_end)
  path[0], path[-1] = z_start, z_end
  return path.astype(np.float32)
