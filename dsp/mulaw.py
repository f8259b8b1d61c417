"""Mu-law companding and 256-level quantisation (WaveNet's input/output code).

Works on numpy arrays (host-side batching) and on jax arrays (inside jit):
each function follows the array type it is given.
"""

import jax
import jax.numpy as jnp
import numpy as np

MU = 255


def _xp(x):
  return jnp if isinstance(x, jax.Array) else np


def mu_law_encode(audio, mu=MU):
  """Compands `audio` in [-1, 1] to [-1, 1]: sign(x) log(1 + mu|x|) / log(1 + mu)."""
  xp = _xp(audio)
  return xp.sign(audio) * xp.log1p(mu * xp.abs(audio)) / np.log1p(mu)


def mu_law_decode(companded, mu=MU):
  """Inverse of `mu_law_encode`: [-1, 1] -> audio in [-1, 1]."""
  xp = _xp(companded)
  return xp.sign(companded) * xp.expm1(xp.abs(companded) * np.log1p(mu)) / mu


def quantize(audio, mu=MU):
  """Audio in [-1, 1] -> mu-law codes: int32 in [0, mu].

  Args:
    audio: [...] float in [-1, 1]; values outside are clipped.

  Returns:
    [...] int32 class indices, 0 for -1 and mu for +1.
  """
  xp = _xp(audio)
  companded = mu_law_encode(xp.clip(audio, -1.0, 1.0), mu)
  return xp.round((companded + 1.0) * (mu / 2.0)).astype(xp.int32)


def companded_value(codes, mu=MU):
  """Mu-law codes in [0, mu] -> [...] float32 in [-1, 1], each code's place on the companded axis."""
  xp = _xp(codes)
  return codes.astype(xp.float32) * (2.0 / mu) - 1.0


def dequantize(codes, mu=MU):
  """Mu-law codes in [0, mu] -> [...] float32 audio in [-1, 1] (bin centres)."""
  return mu_law_decode(companded_value(codes, mu), mu).astype(_xp(codes).float32)
