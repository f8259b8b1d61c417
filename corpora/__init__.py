"""Speech and audio corpora as TFDS array_record datasets, and crops for training.

  voices  synthetic multi-speaker English (flite, espeak-ng, festival): small, full
  vctk    a local copy of VCTK 0.92 (--manual-dir): default
  folder  any folder of audio with an optional metadata.csv (--manual-dir): any label
  music   music21's scores rendered by fluidsynth, multi-label tags: small, full
  magnatagatune  a local copy of MagnaTagATune (--manual-dir): top50

Every speech record holds audio [n] int16 at 16 kHz, speaker and gender ints (see
`corpora.schema`); the tagged music corpora hold audio and a multi-hot `tags`
vector instead (see `corpora.tagging`). Data live in `resolve_data_dir(data_dir)`: the argument, else
$ELECTRIC_BEATS_DATA, else DEFAULT_DATA_DIR.
"""

import os

import tensorflow_datasets as tfds

from common.errors import InputError
from common.files import make_dir
from corpora import schema
from corpora.folder import Folder
from corpora.magnatagatune import MagnaTagATune
from corpora.music import Music
from corpora.vctk import Vctk
from corpora.voices import Voices

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "tfds")
DATA_DIR_ENV = "ELECTRIC_BEATS_DATA"
BUILDERS = {"voices": Voices, "vctk": Vctk, "folder": Folder, "music": Music, "magnatagatune": MagnaTagATune}
_NEEDS_MANUAL_DIR = {"vctk": "your unpacked VCTK-Corpus-0.92 folder", "folder": "your folder of audio",
                     "magnatagatune": "your MagnaTagATune folder (annotations_final.csv and the mp3 folders)"}


def resolve_data_dir(data_dir=None):
  """The TFDS data dir: `data_dir`, else $ELECTRIC_BEATS_DATA, else DEFAULT_DATA_DIR."""
  return os.path.abspath(os.path.expanduser(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR))


def known_configs(name):
  """A human-readable list of `name`'s configs."""
  if name == "folder":
    return "any lower-case label (letters, digits, _), one per folder"
  return ", ".join(config.name for config in BUILDERS[name].BUILDER_CONFIGS)


def build_command(name, config, data_dir=None):
  """The shell command that builds corpus `name`/`config` into `data_dir`."""
  command = f"python -m experiments.build_corpus --name {name} --config {config}"
  if resolve_data_dir(data_dir) != DEFAULT_DATA_DIR:
    command += f" --data-dir {resolve_data_dir(data_dir)}"
  if name in _NEEDS_MANUAL_DIR:
    command += f" --manual-dir DIR  (DIR: {_NEEDS_MANUAL_DIR[name]})"
  return command


def builder(name, config, data_dir=None):
  """The TFDS builder of corpus `name`/`config` in `resolve_data_dir(data_dir)`.

  Raises:
    InputError: an unknown corpus or config; the message lists the known ones.
  """
  if name not in BUILDERS:
    raise InputError(f"unknown corpus {name!r}; known corpora: {', '.join(sorted(BUILDERS))}")
  if not isinstance(config, str) or BUILDERS[name].get_builder_config(config) is None:
    raise InputError(f"unknown config {config!r} for corpus {name}; known configs: {known_configs(name)}")
  return BUILDERS[name](config=config, data_dir=resolve_data_dir(data_dir), file_format="array_record")


def is_built(corpus):
  """Whether a builder's dataset is complete on disk (TFDS's test, without its warning)."""
  return all(os.path.isfile(os.path.join(corpus.data_dir, name)) for name in ("dataset_info.json", "features.json"))


def prepared_builder(name, config, data_dir=None):
  """Like `builder`, but raises InputError with the build command if it is not built yet."""
  corpus = builder(name, config, data_dir)
  if not is_built(corpus):
    raise InputError(f"corpus {name}/{config} is not built in {resolve_data_dir(data_dir)}; build it with: "
                     f"{build_command(name, config, data_dir)}")
  return corpus


def build(name, config, data_dir=None, manual_dir=None, force=False):
  """Builds corpus `name`/`config` (a no-op if built, unless `force`); returns its builder.

  Args:
    name, config: as for `builder`.
    data_dir: data dir override (see `resolve_data_dir`).
    manual_dir: the source folder; required by vctk and folder, refused by voices.
    force: rebuild even if the corpus exists.

  Raises:
    InputError: bad names, a data dir that cannot be created, a missing,
      empty or unexpected manual_dir, bad source data, or a split of a
      `schema.Builder` corpus (voices, music) past TFDS's
      1 GiB shuffle buffer (`corpora.sharded` builders have no such limit).
  """
  if name in _NEEDS_MANUAL_DIR:
    if manual_dir is None:
      raise InputError(f"corpus {name} reads {_NEEDS_MANUAL_DIR[name]}; pass it with --manual-dir")
    if not os.path.isdir(manual_dir):
      raise InputError(f"{manual_dir}: no such directory; give --manual-dir {_NEEDS_MANUAL_DIR[name]}")
    if not os.listdir(manual_dir):
      raise InputError(f"{manual_dir}: the directory is empty; give --manual-dir {_NEEDS_MANUAL_DIR[name]}")
    manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
  elif manual_dir is not None:
    raise InputError(f"corpus {name} is synthesised and takes no --manual-dir; leave it out")
  corpus = builder(name, config, data_dir)
  make_dir(resolve_data_dir(data_dir), "--data-dir")
  mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD if force else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  try:
    corpus.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, download_mode=mode))
  except ModuleNotFoundError as error:
    if error.name != "tensorflow":
      raise
    raise InputError(f"corpus {name}/{config}: a split passed TFDS's 1 GiB in-memory shuffle buffer, past which "
                     "TFDS needs TensorFlow (not installed here); build a smaller config") from None
  return corpus


def load_split(name, config, split, data_dir=None):
  """Random-access records of one split (a TFDS array_record data source).

  Returns:
    A sequence of dicts: audio [n] int16 at 16 kHz, speaker and gender int64,
    Text features as UTF-8 bytes (see the corpus's module for its features).

  Raises:
    InputError: unknown names, a corpus not built yet, or an unknown split.
  """
  corpus = prepared_builder(name, config, data_dir)
  if split not in corpus.info.splits:
    raise InputError(f"corpus {name}/{config} has no split {split!r}; its splits: {', '.join(corpus.info.splits)}")
  return corpus.as_data_source(split=split)


def speaker_names(name, config, data_dir=None):
  """The speaker labels of `name`/`config`, indexed by the records' `speaker` ints.

  Known without building for `voices`; `vctk` and `folder` read them from the
  built corpus.
  """
  corpus = builder(name, config, data_dir)
  if "speaker" not in corpus.info.features:
    raise InputError(f"corpus {name}/{config} has no speakers; pass a speech corpus (voices, vctk or folder)")
  if corpus.info.features["speaker"].num_classes is None:
    corpus = prepared_builder(name, config, data_dir)
  return list(corpus.info.features["speaker"].names)


def gender_names():
  """The gender labels, indexed by the records' `gender` ints (-1: unknown)."""
  return list(schema.GENDERS)
