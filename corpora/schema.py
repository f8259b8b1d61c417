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

from dsp.errors import InputError

SAMPLE_RATE = 16000
GENDERS = ("female", "male")
VERSION = tfds.core.Version("1.0.0")

# Utterance i of a speaker goes to SPLIT_CYCLE[i % 20]: 90% / 5% / 5%.
SPLIT_CYCLE = ("train",) * 18 + ("validation", "test")
HELDOUT_SPLIT = "heldout_speakers"


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class of the corpora's TFDS builders (unregistered: no name clashes)."""

  # tfds 4.9.10 locates a builder defined in a package through the
  # `importlib_resources` backport, which it does not install on Python >= 3.9;
  # this is its own fallback for builders outside packages.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return epath.Path(inspect.getfile(cls))


def audio_feature():
  """[n_samples] int16 PCM at SAMPLE_RATE Hz (tfds.features.Audio needs TensorFlow)."""
  return tfds.features.Tensor(shape=(None,), dtype=np.int16)


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
