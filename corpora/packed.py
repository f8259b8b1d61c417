"""Splits held in memory (one int16 buffer, per-clip labels) and the windows that tile them.

`corpora.batching` (speech: speaker, gender) and `corpora.tagging` (music:
tags, piece) subclass `PackedClips` with their label fields and read records
through `pack`.
"""

import dataclasses

import numpy as np

import dsp
from common.errors import InputError


@dataclasses.dataclass(frozen=True)
class PackedClips:
  """The audio of a split; subclasses add one [n_clips, ...] array per label.

  Attributes:
    samples: [total_samples] int16, the clips back to back.
    starts: [n_clips] int64 offset of each clip in `samples`.
    lengths: [n_clips] int64 samples per clip (each > 0).
  """

  samples: np.ndarray
  starts: np.ndarray
  lengths: np.ndarray

  def __len__(self):
    return len(self.lengths)

  def clip(self, index):
    """Clip `index` as [length] float32 in [-1, 1]."""
    return dsp.from_int16(self.samples[self.starts[index]:self.starts[index] + self.lengths[index]])


def pack(records, clips_class, **label_readers):
  """Reads every record with audio into one `clips_class` (a `PackedClips` subclass).

  Args:
    records: a sequence of records (e.g. `corpora.load_split(...)`), each with
      audio [n] int16 and the labels named in `label_readers`; empty clips are
      skipped.
    clips_class: the dataclass to build; its label fields are the keys of
      `label_readers`.
    **label_readers: label name -> function of the record's value giving that
      clip's label; a label's values are stacked along a new first axis.

  Raises:
    InputError: no record has audio.
  """
  audio, labels = [], {name: [] for name in label_readers}
  for record in records:
    if len(record["audio"]):
      audio.append(np.asarray(record["audio"], dtype=np.int16))
      for name, read in label_readers.items():
        labels[name].append(read(record[name]))
  if not audio:
    raise InputError("the split holds no audio; build the corpus again or choose another split")
  lengths = np.array([len(clip) for clip in audio], dtype=np.int64)
  return clips_class(samples=np.concatenate(audio),
                     starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                     lengths=lengths,
                     **{name: np.stack(values) for name, values in labels.items()})


def tile(lengths, window):
  """Consecutive windows from each clip's start: ([n] clip index, [n] window rank in its clip) int64.

  A clip of length L gets max(1, L // window) windows: the remainder shorter
  than `window` is left out, and a clip shorter than `window` gets one.
  """
  counts = np.maximum(lengths // window, 1)
  clip = np.repeat(np.arange(len(lengths)), counts)
  return clip, np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def padded_rows(num_rows, batch_size):
  """Yields ([batch_size] row index, [batch_size] float32 weight) covering rows 0 .. num_rows - 1 in order.

  The last batch is filled with copies of its first row that have weight 0, so
  every batch has the same shape (one compilation); weight a per-row loss by
  `weight` and divide by its sum.
  """
  for first in range(0, num_rows, batch_size):
    rows = np.arange(first, first + batch_size)
    real = rows < num_rows
    yield np.where(real, rows, first), real.astype(np.float32)
