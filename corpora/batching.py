"""Random and fixed crops of preloaded clips for WaveNet-style training (numpy).

A window is `context + crop` samples: the model's receptive field (left
context) followed by the `crop` samples it predicts. A window ending at sample
`end` of a clip covers [end - context - crop, end); positions before the
clip's start are silence, so clips shorter than the window are left-padded.

Training batch `step` is a pure function of (seed, step): a run resumed at
step k sees exactly the batches of an uninterrupted run. Every batch is a dict
  codes: [batch, context + crop] int32 mu-law codes in [0, 255],
  audio: [batch, context + crop] float32 in [-1, 1],
  speaker: [batch] int32, gender: [batch] int32 (-1 unknown),
evaluation batches add weight: [batch] float32, 0 for padding rows.
"""

import dataclasses

import numpy as np

import corpora
import dsp
from common.errors import InputError
from corpora import packed

# The mu-law code of every int16 value, indexed by its uint16 bit pattern:
# dsp.quantize(dsp.from_int16(pcm)) == _CODE_OF_PCM[pcm.view(np.uint16)].
_CODE_OF_PCM = dsp.quantize(dsp.from_int16(np.arange(2**16, dtype=np.uint16).view(np.int16)))
NUM_CODES = dsp.mulaw.MU + 1  # mu-law levels of every batch's codes (0 .. MU)


@dataclasses.dataclass(frozen=True)
class Clips(packed.PackedClips):
  """A speech split in memory (see `corpora.packed.PackedClips`) with its labels.

  Attributes:
    speaker: [n_clips] int32 speaker label.
    gender: [n_clips] int32 gender label, -1 unknown.
  """

  speaker: np.ndarray
  gender: np.ndarray


def preload(records):
  """Reads every record (audio [n] int16, speaker and gender ints) of a split into `Clips`.

  Raises:
    InputError: no record has audio.
  """
  return packed.pack(records, Clips, speaker=np.int32, gender=np.int32)


def speaker_labels(name, config, clips, data_dir=None):
  """{"speaker": names by id, "gender": names by id, "speaker_gender": {speaker: gender}} of corpus `name`/`config`.

  `clips` (a `Clips` of one of its splits) tells each speaker's gender.
  """
  speakers = corpora.speaker_names(name, config, data_dir)
  genders = corpora.gender_names()
  speaker_gender = {speakers[s]: genders[g] for s, g in zip(clips.speaker.tolist(), clips.gender.tolist()) if g >= 0}
  return {"speaker": speakers, "gender": genders, "speaker_gender": speaker_gender}


def _check_sizes(batch_size, context, crop):
  if batch_size < 1 or crop < 1 or context < 0:
    raise InputError(f"need batch_size >= 1, crop >= 1 and context >= 0; got {batch_size}, {crop}, {context}")


def windows(clips, clip, end, context, crop):
  """Gathers the windows ending at `end: [b]` of clips `clip: [b]` as a batch dict (see the module docstring)."""
  position = end[:, None] - (context + crop) + np.arange(context + crop)
  inside = position >= 0
  pcm = np.where(inside, clips.samples[clips.starts[clip][:, None] + np.maximum(position, 0)], np.int16(0))
  return {
      "codes": _CODE_OF_PCM[pcm.view(np.uint16)],
      "audio": dsp.from_int16(pcm),
      "speaker": clips.speaker[clip],
      "gender": clips.gender[clip],
  }


def train_batch(clips, seed, step, batch_size, context, crop):
  """The training batch number `step`, a pure function of (seed, step).

  Every (clip, end) pair with end in [min(crop, length), length] is equally
  likely, so clips are drawn in proportion to their length and the predicted
  samples always lie inside the clip (all of it when it is shorter than `crop`).

  Args:
    clips: `Clips` from `preload`.
    seed: int, fixed for a run.
    step: int >= 0, the training step.
    batch_size: windows per batch.
    context: left-context samples (the receptive field), >= 0.
    crop: predicted samples per window, >= 1.

  Returns:
    A batch dict (see the module docstring).
  """
  _check_sizes(batch_size, context, crop)
  clip, end = train_windows(clips, seed, step, batch_size, crop)
  return windows(clips, clip, end, context, crop)


def train_windows(clips, seed, step, batch_size, crop):
  """The (clip [batch_size], end [batch_size]) int64 pairs of `train_batch` (same arguments)."""
  ends_per_clip = clips.lengths - np.minimum(crop, clips.lengths) + 1
  first_pair = np.cumsum(ends_per_clip) - ends_per_clip
  pair = np.random.default_rng([seed, step]).integers(0, ends_per_clip.sum(), size=batch_size)
  clip = np.searchsorted(first_pair, pair, side="right") - 1
  end = np.minimum(crop, clips.lengths[clip]) + pair - first_pair[clip]
  return clip, end


def eval_windows(clips, crop):
  """Fixed evaluation windows: ([n] clip index, [n] end) int64.

  Each clip is tiled by consecutive predicted crops ending at crop, 2 crop,
  ... up to its length (the remainder shorter than `crop` is left out); a
  clip shorter than `crop` gives one window ending at its last sample.
  """
  clip, rank = packed.tile(clips.lengths, crop)
  end = np.minimum((rank + 1) * crop, clips.lengths[clip])
  return clip, end


def eval_batches(clips, batch_size, context, crop, max_windows=None):
  """Walks every `eval_windows` window once, in order, `batch_size` at a time.

  With `max_windows`, only that many windows, evenly spaced over the whole
  split (so every part of it, e.g. every speaker, is represented).
  The last batch is padded as in `corpora.packed.padded_rows`: weight the
  per-window loss by `weight` and divide by its sum.
  """
  _check_sizes(batch_size, context, crop)
  clip, end = eval_windows(clips, crop)
  if max_windows is not None and max_windows < len(clip):
    kept = np.unique(np.linspace(0, len(clip) - 1, max(max_windows, 1)).round().astype(np.int64))
    clip, end = clip[kept], end[kept]
  for rows, weight in packed.padded_rows(len(clip), batch_size):
    batch = windows(clips, clip[rows], end[rows], context, crop)
    batch["weight"] = weight
    yield batch
