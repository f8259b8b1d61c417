"""The vocoder's conditioning: frame features as network inputs, cached once per corpus split.

Two sample-rate series condition the vocoder for the samples u = start, ...,
start + length - 1 of a clip:
  local: [length, LOCAL_CHANNELS] frame vectors (normalised log-F0, voicing,
    energy, log-mel) interpolated linearly between frame centres;
  excitation: [length, dsp.excitation.NUM_CHANNELS] the source at F0.
Samples before the clip or after its end have the features of silence.
"""

import dataclasses
import os

import numpy as np
from tqdm import tqdm

import corpora
from common.errors import InputError
from common.files import atomic_path
from dsp import excitation as excitation_lib
from dsp import frames as frames_lib

LOG_F0_CHANNEL, VOICED_CHANNEL, ENERGY_CHANNEL, FIRST_MEL_CHANNEL = 0, 1, 2, 3  # layout of a frame vector
LOCAL_CHANNELS = FIRST_MEL_CHANNEL + frames_lib.NUM_MELS  # log-F0, voiced, energy, log-mel bands
# Fixed affine maps to about [-1, 1] for speech (chosen from the voices corpus; fixed so that any clip,
# from any corpus, is normalised the same way as the training data).
LOG_F0_CENTRE, LOG_F0_SCALE = float(np.log(150.0)), 0.4  # 100 Hz -> -1.0, 225 Hz -> +1.0
ENERGY_CENTRE, ENERGY_SCALE = -6.0, 3.0  # log RMS: silence (1e-5) -> -1.8, loud speech (0.2) -> +1.5
LOG_MEL_CENTRE, LOG_MEL_SCALE = -8.0, 5.0  # log mel power: silence (1e-8) -> -2.1
SILENT_ENERGY, SILENT_LOG_MEL = float(np.log(1e-5)), float(np.log(1e-8))
CACHE_VERSION = 1  # bump when the features change; older caches are rebuilt


def frame_vectors(features):
  """`dsp.frames.FrameFeatures` -> [F, LOCAL_CHANNELS] float32 normalised frame vectors."""
  return np.concatenate([
      ((features.log_f0 - LOG_F0_CENTRE) / LOG_F0_SCALE)[:, None],
      features.voiced[:, None],
      ((features.energy - ENERGY_CENTRE) / ENERGY_SCALE)[:, None],
      (features.log_mel - LOG_MEL_CENTRE) / LOG_MEL_SCALE,
  ], axis=1).astype(np.float32)


def silent_vectors(count, log_f0):
  """[count, LOCAL_CHANNELS] frame vectors of silence (unvoiced, silent energy and envelope) at `log_f0`."""
  silence = frames_lib.FrameFeatures(np.full(count, log_f0, np.float32), np.zeros(count, np.float32),
                                     np.full((count, frames_lib.NUM_MELS), SILENT_LOG_MEL, np.float32),
                                     np.full(count, SILENT_ENERGY, np.float32), np.zeros(count, np.float32))
  return frame_vectors(silence)


def features_from_vectors(vectors):
  """[F, LOCAL_CHANNELS] frame vectors (e.g. sampled by a prior) -> FrameFeatures (phase 0, voicing 0 or 1)."""
  vectors = np.asarray(vectors, np.float32)
  voiced = (vectors[:, 1] > 0.5).astype(np.float32)
  return frames_lib.FrameFeatures(
      log_f0=(vectors[:, 0] * LOG_F0_SCALE + LOG_F0_CENTRE).astype(np.float32), voiced=voiced,
      log_mel=(vectors[:, 3:] * LOG_MEL_SCALE + LOG_MEL_CENTRE).astype(np.float32),
      energy=(vectors[:, 2] * ENERGY_SCALE + ENERGY_CENTRE).astype(np.float32),
      phase=np.zeros(len(vectors), np.float32))


@dataclasses.dataclass(frozen=True)
class SplitFrames:
  """The frame features of every clip of a split, back to back.

  Attributes:
    features: `dsp.frames.FrameFeatures` whose arrays hold all clips' frames.
    starts: [n_clips] int64 first frame of each clip.
    counts: [n_clips] int64 frames per clip.
  """
  features: frames_lib.FrameFeatures
  starts: np.ndarray
  counts: np.ndarray

  def clip(self, index):
    """The FrameFeatures of clip `index`."""
    rows = slice(self.starts[index], self.starts[index] + self.counts[index])
    return frames_lib.FrameFeatures(*(array[rows] for array in self.features))


def compute_split_frames(clips, sample_rate, desc="frame features"):
  """FrameFeatures of every clip of a `corpora.packed.PackedClips` split, with a progress bar."""
  per_clip = [frames_lib.frame_features(clips.clip(i), sample_rate)
              for i in tqdm(range(len(clips)), desc=desc, unit="clip", dynamic_ncols=True)]
  counts = np.array([len(f.log_f0) for f in per_clip], np.int64)
  features = frames_lib.FrameFeatures(*(np.concatenate(arrays) for arrays in zip(*per_clip)))
  return SplitFrames(features, np.cumsum(counts) - counts, counts)


def cache_path(name, config, split, data_dir=None):
  """Where the frame cache of corpus `name`/`config` split `split` lives."""
  return os.path.join(corpora.resolve_data_dir(data_dir), "frames", name, config, f"{split}.npz")


def load_split_frames(name, config, split, clips, sample_rate, data_dir=None):
  """The SplitFrames of a split: read from its cache, else computed and cached.

  The cache is checked against the clips' frame counts and CACHE_VERSION; a
  stale or unreadable cache is rebuilt.
  """
  path = cache_path(name, config, split, data_dir)
  expected = np.array([frames_lib.num_frames(n, sample_rate) for n in clips.lengths], np.int64)
  try:
    with np.load(path) as cached:
      if int(cached["version"]) == CACHE_VERSION and np.array_equal(cached["counts"], expected):
        features = frames_lib.FrameFeatures(*(cached[field] for field in frames_lib.FrameFeatures._fields))
        return SplitFrames(features, np.cumsum(expected) - expected, expected)
  except (OSError, KeyError, ValueError):
    pass
  split_frames = compute_split_frames(clips, sample_rate, desc=f"frame features {name}/{config}/{split}")
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path, ".npz") as temporary:
      np.savez(temporary, version=CACHE_VERSION, counts=split_frames.counts, **split_frames.features._asdict())
  except OSError as error:
    raise InputError(f"{path}: cannot write the frame cache ({error.strerror}); free space or set --data-dir") from None
  return split_frames


def window_conditioning(features, start, length, sample_rate, aligned_phase=True):
  """The vocoder's conditioning for samples start ... start + length - 1 of one clip.

  Args:
    features: the clip's `dsp.frames.FrameFeatures` (F frames).
    start: first sample (may be negative: before the clip is silence).
    length: samples, >= 1.
    sample_rate: Hz.
    aligned_phase: start the source of each voiced frame at the phase measured
      on the recording (training, teacher forcing); False integrates F0 from
      the window's start (synthesis from features alone).

  Returns:
    (local [length, LOCAL_CHANNELS], excitation [length, NUM_CHANNELS]) float32.
  """
  hop = frames_lib.hop_length(sample_rate)
  first = start // hop - 1  # One frame of margin on each side for the interpolation.
  last = (start + length - 1) // hop + 2
  count = len(features.log_f0)
  index = np.arange(first, last)
  inside = (index >= 0) & (index < count)
  taken = np.clip(index, 0, max(count - 1, 0))
  log_f0 = features.log_f0[taken]
  voiced = np.where(inside, features.voiced[taken], 0.0)
  energy = np.where(inside, features.energy[taken], SILENT_ENERGY)
  log_mel = np.where(inside[:, None], features.log_mel[taken], SILENT_LOG_MEL)
  phase = np.where(inside, features.phase[taken], 0.0)
  window = frames_lib.FrameFeatures(log_f0, voiced.astype(np.float32), log_mel, energy, phase)
  vectors = frame_vectors(window)
  offset = start - first * hop  # Sample `start` is this far into the window's first frame.
  positions = offset + np.arange(length)
  centres = (np.arange(len(index)) + 0.5) * hop
  local = np.stack([np.interp(positions, centres, vectors[:, c]) for c in range(LOCAL_CHANNELS)], axis=1)
  local[:, 1] = np.repeat(voiced, hop)[positions]  # Voicing is held over each frame, not interpolated.
  source = excitation_lib.excitation(log_f0, voiced, hop, sample_rate, phase if aligned_phase else None)
  return local.astype(np.float32), source[positions]
