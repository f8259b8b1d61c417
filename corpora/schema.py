"""The record format every corpus shares, and the rule that splits utterances.

Every corpus stores records with at least
  audio: [n_samples] int16 PCM at `SAMPLE_RATE` Hz (mono),
  speaker: int64 index into the corpus's speaker names (a ClassLabel),
  gender: int64 index into `GENDERS`, -1 when unknown.
TFDS returns Text features as UTF-8 bytes.
"""

import inspect

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from common.errors import InputError

SAMPLE_RATE = 16000
GENDERS = ("female", "male")
VERSION = tfds.core.Version("1.0.0")

# Utterance i of a speaker goes to SPLIT_CYCLE[i % 20]: 90% / 5% / 5%.
SPLIT_CYCLE = ("train",) * 18 + ("validation", "test")
HELDOUT_SPLIT = "heldout_speakers"


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class of the synthesised corpora's TFDS builders (unregistered: no name clashes).

  TFDS shuffles every split in memory, so a split must stay under 1 GiB of
  serialized records; corpora read from the user's files, of any size, use
  `corpora.sharded.Builder` instead.
  """

  # tfds 4.9.10 locates a builder defined in a package through the
  # `importlib_resources` backport, which it does not install on Python >= 3.9;
  # this is its own fallback for builders outside packages.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return epath.Path(inspect.getfile(cls))


def audio_feature(encoding="none"):
  """[n_samples] int16 PCM at SAMPLE_RATE Hz (tfds.features.Audio needs TensorFlow).

  Args:
    encoding: "none" stores a list of integers (about 6 bytes per sample);
      "bytes" stores the raw PCM (2 bytes per sample). A split must stay under
      TFDS's 1 GiB in-memory shuffle buffer, past which it needs TensorFlow.
  """
  return tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding=encoding)


def gender_feature():
  """ClassLabel over GENDERS; -1 stores an unknown gender."""
  return tfds.features.ClassLabel(names=GENDERS)


def split_of(index, cycle=SPLIT_CYCLE):
  """The split of a speaker's utterance number `index` (0-based, in a fixed order)."""
  return cycle[index % len(cycle)]


def gender_name(value, where):
  """Maps 'F'/'female'/'M'/'male' (any case) to a GENDERS entry, '' to None.

  Raises:
    InputError: any other value; `where` names the file and line for the message.
  """
  key = value.strip().lower()
  if not key:
    return None
  if key in ("f", "female"):
    return "female"
  if key in ("m", "male"):
    return "male"
  raise InputError(f"{where}: gender {value!r} is not female/male (or F/M); fix it or leave it empty")
