"""`music`: music21's bundled scores rendered offline to tagged audio clips.

Scores are drawn from collections of music21's corpus (one composer label
each), seeded, and each piece gives `excerpts_per_piece` clips of
`render.CLIP_SECONDS` s, each with its own tempo, transposition, texture and
General MIDI instruments (see `render.py`), rendered by fluidsynth with the
FluidR3 General MIDI soundfont at 16 kHz mono. A composer's pieces, in seeded
order, go to the splits of `config.split_cycle` in turn, so no piece is in two
splits and every split has every composer.

Records: audio [n] int16 at 16 kHz (peak 0.9), tags [n_tags] uint8 multi-hot
(names in `tags.tag_names(config.composers)`, also in the dataset's metadata
under "tags"), piece and composer (Text), programs (Text, the General MIDI
programs played, comma-separated), tempo_bpm (float32 quarter notes per minute).
"""

import dataclasses
import os
import zlib

import numpy as np
import tensorflow_datasets as tfds

from common.errors import InputError
from corpora import schema
from corpora.music import render, tags

PIECE_SEED = 20240612
# Configs with fewer pieces than this render in the calling process.
_PARALLEL_FROM = 40


@dataclasses.dataclass(eq=False)
class MusicConfig(tfds.core.BuilderConfig):
  """Which scores, how many, and how they are split.

  Attributes:
    collections: (composer label, music21 corpus folder, file extensions, pieces) rows.
    excerpts_per_piece: clips rendered from each piece.
    split_cycle: split names; a composer's i-th piece goes to split_cycle[i % len].
  """

  collections: tuple = ()
  excerpts_per_piece: int = 1
  split_cycle: tuple = ()

  @property
  def composers(self):
    return tuple(label for label, _, _, _ in self.collections)


SMALL = MusicConfig(
    name="small",
    description="2 composers x 3 pieces x 2 excerpts, one piece per split and composer; builds in seconds, for tests.",
    collections=(("bach", "bach", (".mxl",), 3), ("traditional", "ryansMammoth", (".abc",), 3)),
    excerpts_per_piece=2,
    split_cycle=("train", "validation", "test"),
)
FULL = MusicConfig(
    name="full",
    description="5 composers, 1,250 pieces x 4 excerpts of 4 s (80/10/10 by piece).",
    collections=(("bach", "bach", (".mxl",), 400), ("palestrina", "palestrina", (".krn",), 400),
                 ("monteverdi", "monteverdi", (".mxl",), 49), ("trecento", "trecento", (".xml",), 101),
                 ("traditional", "ryansMammoth", (".abc",), 300)),
    excerpts_per_piece=4,
    split_cycle=("train",) * 8 + ("validation", "test"),
)


def corpus_root():
  """music21's bundled corpus folder."""
  from music21 import common  # noqa: PLC0415 (slow to import; only builds need it)
  return os.fspath(common.getCorpusFilePath())


def select_pieces(config, root=None):
  """The config's pieces, each with its split.

  Returns:
    List of `render.Piece`, by collection then seeded order.

  Raises:
    InputError: a collection has fewer scores than the config asks for.
  """
  root = root or corpus_root()
  pieces = []
  for label, folder, extensions, count in config.collections:
    directory = os.path.join(root, folder)
    names = sorted(os.path.relpath(os.path.join(path, name), root).replace(os.sep, "/")
                   for path, _, files in os.walk(directory) for name in files if name.endswith(extensions))
    if len(names) < count:
      raise InputError(f"music21 corpus folder {directory} has {len(names)} scores, the config needs {count}; "
                       "reinstall music21 at the version pinned in requirements.txt")
    order = np.random.default_rng([PIECE_SEED, zlib.crc32(label.encode())]).permutation(len(names))[:count]
    for rank, index in enumerate(order):
      pieces.append(render.Piece(name=names[index], path=os.path.join(root, names[index]), composer=label,
                                 split=schema.split_of(rank, config.split_cycle)))
  return pieces


class Music(schema.Builder, skip_registration=True):
  """Rendered music21 scores with audible tags; see the module docstring."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "full: 560 pieces x 3 excerpts.",
      "1.1.0": "full: 1,250 pieces x 4 excerpts (every Monteverdi and trecento score, more of the others); "
                 "audio stored as raw bytes, a third of the size.",
  }
  BUILDER_CONFIGS = [SMALL, FULL]

  def _info(self):
    config = self.builder_config
    names = tags.tag_names(config.composers)
    metadata = tfds.core.MetadataDict(tags=list(names))
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": schema.audio_feature(encoding="bytes"),
            "tags": tfds.features.Tensor(shape=(len(names),), dtype=np.uint8),
            "piece": tfds.features.Text(),
            "composer": tfds.features.Text(),
            "programs": tfds.features.Text(),
            "tempo_bpm": tfds.features.Scalar(dtype=np.float32),
        }),
        metadata=metadata,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    render.check_installed()
    pieces = select_pieces(config)
    processes = 1 if len(pieces) < _PARALLEL_FROM else min(2, os.cpu_count() or 1)
    clips = render.render_all(pieces, config.composers, config.excerpts_per_piece, processes,
                              f"rendering music/{config.name}")
    splits = {}
    for clip in clips:
      splits.setdefault(clip.piece.split, []).append(clip)
    missing = [split for split in dict.fromkeys(config.split_cycle) if split not in splits]
    if missing:
      raise InputError(f"music/{config.name}: no clip rendered for split {missing[0]}; check fluidsynth and music21")
    return {split: self._generate_examples(items) for split, items in splits.items()}

  def _generate_examples(self, clips):
    for clip in clips:
      yield f"{clip.piece.name}#{clip.index}", {
          "audio": clip.pcm,
          "tags": clip.tags,
          "piece": clip.piece.name,
          "composer": clip.piece.composer,
          "programs": ",".join(str(program) for program in clip.programs),
          "tempo_bpm": np.float32(clip.tempo_bpm),
      }
