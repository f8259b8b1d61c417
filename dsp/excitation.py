"""A sample-rate source signal from frame pitch and voicing (as neural source-filter models use).

The source is phase-continuous: a sine and cosine at F0 where a frame is
voiced, noise where it is not. Its phase is either the running integral of F0
(synthesis from features alone) or, in training, reset at every voiced frame
to the phase measured on the recording (`dsp.frames.fundamental_phase`), so
that the source's pulses line up with the waveform the model must predict.
"""

import numpy as np

from dsp import frames as frames_lib

NUM_CHANNELS = 3  # voiced sine, voiced cosine, unvoiced noise


def source_phase(log_f0, voiced, hop, sample_rate, frame_phase=None):
  """[F * hop] phase in radians of the source.

  Args:
    log_f0: [F] continuous log-F0 (Hz) per frame.
    voiced: [F] voicing per frame in {0, 1}.
    hop: samples per frame.
    sample_rate: Hz.
    frame_phase: optional [F] phase at each frame's first sample (radians);
      voiced frames restart from it, then integrate F0 within the frame.
      None: one running integral of F0 from phase 0.
  """
  f0, _ = frames_lib.f0_per_sample(log_f0, voiced, hop)
  increments = 2.0 * np.pi * f0 / sample_rate
  running = np.concatenate([[0.0], np.cumsum(increments)[:-1]])  # phase(t) sums the increments before t.
  if frame_phase is None:
    return running
  starts = running[::hop]
  frame_offset = np.where(np.asarray(voiced) > 0, np.asarray(frame_phase, np.float64) - starts, 0.0)
  return running + np.repeat(frame_offset, hop)


def excitation(log_f0, voiced, hop, sample_rate, frame_phase=None, noise=None):
  """The source: [F * hop, NUM_CHANNELS] float32.

  Args:
    log_f0, voiced, hop, sample_rate, frame_phase: as for `source_phase`.
    noise: optional [F * hop] float noise for the unvoiced channel; None gives
      zeros there (an autoregressive model draws its own noise).

  Returns:
    Channels (v sin phase, v cos phase, (1 - v) noise) with v the voicing
    held over each frame; the amplitude is 1 where voiced.
  """
  phase = source_phase(log_f0, voiced, hop, sample_rate, frame_phase)
  v = np.repeat(np.asarray(voiced, np.float32), hop)
  unvoiced = np.zeros_like(v) if noise is None else (1.0 - v) * np.asarray(noise, np.float32)
  return np.stack([v * np.sin(phase), v * np.cos(phase), unvoiced], axis=-1).astype(np.float32)
