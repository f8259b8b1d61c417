"""`voices`: an offline multi-speaker English corpus from flite, espeak-ng and festival.

Every speaker reads the same seeded sentences (a parallel corpus); sentence i
goes to split `schema.split_of(i, config.split_cycle)` for every speaker, so
no text is shared between train, validation and test. The config's held-out
speakers (one per gender) fill the `heldout_speakers` split only.

Records: audio [n] int16 at 16 kHz (silence-trimmed, peak 0.95), speaker
(ClassLabel: the config's training speakers, then its held-out ones), gender
(ClassLabel female/male), engine and text (Text), median_f0 (float32 Hz, pYIN
at 8 kHz; NaN when no frame is voiced, as for 8 of flite_kal16's buzzy LPC
utterances in `full`).
"""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from common.errors import InputError
from corpora import schema
from corpora.voices import engines, render, roster
from corpora.voices.sentences import make_sentences

SENTENCE_SEED = 20240611
# Configs with fewer utterances than this render in the calling process.
_PARALLEL_FROM = 100


@dataclasses.dataclass(eq=False)
class VoicesConfig(tfds.core.BuilderConfig):
  """A speaker roster and corpus size.

  Attributes:
    speakers: `roster.Speaker`s in train, validation and test.
    heldout: `roster.Speaker`s only in the heldout_speakers split.
    utterances_per_speaker: sentences each speaker reads.
    split_cycle: split names; utterance i goes to split_cycle[i % len].
  """

  speakers: tuple = ()
  heldout: tuple = ()
  utterances_per_speaker: int = 0
  split_cycle: tuple = schema.SPLIT_CYCLE


SMALL = VoicesConfig(
    name="small",
    description="2 speakers (1 per gender) x 4 utterances (2 train, 1 validation, 1 test) "
    "plus 2 held-out speakers x 4 utterances; builds in seconds, for tests.",
    speakers=roster.SMALL_SPEAKERS,
    heldout=roster.SMALL_HELDOUT,
    utterances_per_speaker=4,
    split_cycle=("train", "train", "validation", "test"),
)
FULL = VoicesConfig(
    name="full",
    description="14 speakers (7 per gender) x 240 utterances (216 train, 12 validation, "
    "12 test) plus 2 held-out speakers x 240 utterances.",
    speakers=roster.FULL_SPEAKERS,
    heldout=roster.FULL_HELDOUT,
    utterances_per_speaker=240,
)


def check_f0(speakers, utterances):
  """Fails unless each speaker's median F0 lies in its gender's range.

  This catches an engine that silently spoke with another voice.

  Raises:
    InputError: naming the speaker, its measured F0 and the expected range.
  """
  for speaker in speakers:
    f0 = [utterance.median_f0 for utterance in utterances if utterance.speaker == speaker]
    measured = np.nanmedian(f0) if np.any(np.isfinite(f0)) else float("nan")
    low, high = roster.F0_RANGE_HZ[speaker.gender]
    if not low <= measured <= high:
      raise InputError(
          f"{speaker.name} ({speaker.engine} voice {speaker.voice}) has median F0 {measured:.0f} Hz, "
          f"outside the {speaker.gender} range {low:.0f}-{high:.0f} Hz; the engine probably fell "
          "back to another voice: check that the voice is installed")


class Voices(schema.Builder, skip_registration=True):
  """Synthetic multi-speaker English speech; see the module docstring."""

  VERSION = schema.VERSION
  BUILDER_CONFIGS = [SMALL, FULL]

  def _info(self):
    config = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": schema.audio_feature(),
            "speaker": tfds.features.ClassLabel(names=[s.name for s in config.speakers + config.heldout]),
            "gender": schema.gender_feature(),
            "engine": tfds.features.Text(),
            "text": tfds.features.Text(),
            "median_f0": tfds.features.Scalar(dtype=np.float32),
        }),
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    everyone = config.speakers + config.heldout
    engines.check_installed(everyone)
    sentences = make_sentences(config.utterances_per_speaker, SENTENCE_SEED)
    total = len(everyone) * len(sentences)
    processes = 1 if total < _PARALLEL_FROM else min(2, os.cpu_count() or 1)
    utterances = render.render_all(everyone, sentences, processes, f"synthesising voices/{config.name}")
    check_f0(everyone, utterances)
    heldout = set(config.heldout)
    splits = {}
    for utterance in utterances:
      split = (schema.HELDOUT_SPLIT if utterance.speaker in heldout
               else schema.split_of(utterance.index, config.split_cycle))
      splits.setdefault(split, []).append(utterance)
    return {split: self._generate_examples(items) for split, items in splits.items()}

  def _generate_examples(self, utterances):
    for utterance in utterances:
      speaker = utterance.speaker
      yield f"{speaker.name}_{utterance.index:04d}", {
          "audio": utterance.pcm,
          "speaker": speaker.name,
          "gender": speaker.gender,
          "engine": speaker.engine,
          "text": utterance.text,
          "median_f0": np.float32(utterance.median_f0),
      }
