"""Tagged corpora (music, magnatagatune): tag names, clips in memory, crops for training.

Training batch `step` is a pure function of (seed, step), so a resumed run sees
the batches of an uninterrupted one. Every batch is a dict
  audio: [batch, crop] float32 in [-1, 1],
  tags: [batch, n_tags] float32 in {0, 1},
evaluation batches add weight: [batch] float32, 0 for padding rows.
"""

import dataclasses

import numpy as np

import corpora
import dsp
from common.errors import InputError
from corpora import packed


def tag_names(name, config, data_dir=None):
  """The tag names of a built tagged corpus, in the order of its records' `tags` vectors.

  Raises:
    InputError: the corpus is not built, or is not a tagged corpus.
  """
  corpus = corpora.prepared_builder(name, config, data_dir)
  if "tags" not in corpus.info.metadata:
    raise InputError(f"corpus {name}/{config} has no tags; use a tagged corpus (music, magnatagatune)")
  return [str(tag) for tag in corpus.info.metadata["tags"]]


@dataclasses.dataclass(frozen=True)
class TaggedClips(packed.PackedClips):
  """A tagged split in memory (see `corpora.packed.PackedClips`) with its labels.

  Attributes:
    tags: [n_clips, n_tags] float32 multi-hot.
    piece: [n_clips] str, the piece each clip comes from.
  """

  tags: np.ndarray
  piece: np.ndarray


def _text(value):
  return value.decode() if isinstance(value, bytes) else str(value)


def preload(records):
  """Reads every record (audio [n] int16, tags [n_tags], piece) of a split into `TaggedClips`.

  Raises:
    InputError: no record has audio.
  """
  return packed.pack(records, TaggedClips, tags=lambda tags: np.asarray(tags, dtype=np.float32), piece=_text)


def _windows(clips, clip, start, crop):
  """Windows [start, start + crop) of clips `clip: [b]` (zeros past a clip's end) as [b, crop] float32."""
  position = start[:, None] + np.arange(crop)
  inside = position < clips.lengths[clip][:, None]
  pcm = np.where(inside, clips.samples[clips.starts[clip][:, None] + np.minimum(position, clips.lengths[clip][:, None] - 1)],
                 np.int16(0))
  return dsp.from_int16(pcm)


def train_batch(clips, seed, step, batch_size, crop):
  """Training batch `step`: `batch_size` uniformly drawn clips, each a random `crop`-sample window.

  Clips shorter than `crop` are zero-padded at the end.

  Returns:
    {"audio": [batch_size, crop] float32, "tags": [batch_size, n_tags] float32}.
  """
  if batch_size < 1 or crop < 1:
    raise InputError(f"need batch_size >= 1 and crop >= 1; got {batch_size}, {crop}")
  rng = np.random.default_rng([seed, step])
  clip = rng.integers(0, len(clips), size=batch_size)
  start = (rng.random(batch_size) * (np.maximum(clips.lengths[clip] - crop, 0) + 1)).astype(np.int64)
  return {"audio": _windows(clips, clip, start, crop), "tags": clips.tags[clip]}


def eval_windows(clips, length):
  """Windows tiling each clip: ([n] clip index, [n] start) int64.

  A clip gets max(1, len // length) consecutive windows from its start (the
  remainder is left out; a clip shorter than `length` is zero-padded).
  """
  clip, rank = packed.tile(clips.lengths, length)
  return clip, rank * length


def eval_batches(clips, batch_size, length):
  """Walks every `eval_windows` window once, in order, `batch_size` at a time.

  The last batch is padded as in `corpora.packed.padded_rows`.

  Yields:
    {"audio": [batch_size, length] float32, "tags": [batch_size, n_tags]
    float32, "weight": [batch_size] float32, "clip": [batch_size] int64}.
  """
  clip, start = eval_windows(clips, length)
  for rows, weight in packed.padded_rows(len(clip), batch_size):
    yield {"audio": _windows(clips, clip[rows], start[rows], length), "tags": clips.tags[clip[rows]],
           "weight": weight, "clip": clip[rows]}
