"""`folder`: any folder of audio files, with an optional metadata.csv.

The manual dir is the folder. Every *.wav, *.flac and *.ogg below it (any
depth, any letter case; hidden files and folders skipped) becomes one record,
mixed to mono and resampled to 16 kHz int16. A metadata.csv at its top level
labels files; every column but `file` may be empty or left out:
  file,speaker,gender,tags
  takes/kick_01.wav,alice,female,drums;acoustic
`file` is the path relative to the folder. Unlisted files get speaker
'unknown', gender -1 and empty tags.

Config names are free labels, one per folder (`--config drums`), so several
folders share one data dir. Each speaker's files, in path order, are split
90/5/5 by `schema.split_of`; splits that receive no file are left out (with
fewer than 19 files per speaker there is only `train`).

Splits are written shard by shard in path order (`corpora.sharded`), so a
folder of any size builds without TensorFlow.

Records: audio [n] int16 at 16 kHz (stored as raw bytes), speaker (ClassLabel,
sorted names), gender (ClassLabel female/male, -1 unknown), tags and file (Text).
"""

import csv
import os
import re

import tensorflow_datasets as tfds

import dsp
from common.errors import InputError
from corpora import schema, sharded

METADATA = "metadata.csv"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
UNKNOWN_SPEAKER = "unknown"
CONFIG_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")
_COLUMNS = ("file", "speaker", "gender", "tags")


def find_audio(root):
  """Relative paths ('/'-separated, sorted) of the audio files below `root`."""
  found = []
  for directory, subdirectories, files in os.walk(root):
    subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
    for name in files:
      if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
        found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
  return sorted(found)


def read_metadata(root, files):
  """Parses `root/metadata.csv` into {file: (speaker, gender or None, tags)}.

  Args:
    root: the folder.
    files: the relative audio paths found below it (see `find_audio`).

  Returns:
    A dict for the listed files; empty when there is no metadata.csv.

  Raises:
    InputError: an unknown column, no `file` column, a file that is not in
      the folder, a file listed twice, or a gender other than female/male.
  """
  path = os.path.join(root, METADATA)
  if not os.path.isfile(path):
    return {}
  known = set(files)
  labels = {}
  with open(path, newline="", encoding="utf-8") as handle:
    reader = csv.DictReader(handle)
    columns = [column.strip() for column in reader.fieldnames or []]
    unknown = [column for column in columns if column not in _COLUMNS]
    if unknown or "file" not in columns:
      raise InputError(f"{path}: header must name columns from {', '.join(_COLUMNS)} including file; "
                       f"got {', '.join(columns) or 'nothing'}")
    reader.fieldnames = columns
    for line, row in enumerate(reader, start=2):
      where = f"{path} line {line}"
      file = os.path.normpath((row.get("file") or "").strip()).replace(os.sep, "/")
      if file not in known:
        raise InputError(f"{where}: {file!r} is not an audio file in {root}; fix the path (relative to the folder)")
      if file in labels:
        raise InputError(f"{where}: {file!r} is listed twice; keep one row per file")
      speaker = (row.get("speaker") or "").strip() or UNKNOWN_SPEAKER
      labels[file] = (speaker, schema.gender_name(row.get("gender") or "", where), (row.get("tags") or "").strip())
  return labels


class Folder(sharded.Builder, skip_registration=True):
  """A folder of audio files; see the module docstring."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Audio as a list of integers; splits shuffled by TFDS, which needs TensorFlow past 1 GiB.",
      "1.1.0": "Audio stored as raw int16 bytes (a third of the size); records in path order, written shard by "
               "shard, so splits of any size build without TensorFlow.",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Pass the folder of audio files (and optional metadata.csv) as the manual dir."

  @classmethod
  def get_builder_config(cls, name, version=None):
    """Any lower-case label names a config (one folder each); None otherwise."""
    return tfds.core.BuilderConfig(name=name) if CONFIG_NAME.fullmatch(name) else None

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": schema.audio_feature(encoding="bytes"),
            "speaker": tfds.features.ClassLabel(),
            "gender": schema.gender_feature(),
            "tags": tfds.features.Text(),
            "file": tfds.features.Text(),
        }),
    )

  def _split_sources(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    files = find_audio(root)
    if not files:
      raise InputError(f"{root}: holds no {'/'.join(AUDIO_EXTENSIONS)} files; choose a folder of audio")
    labels = read_metadata(root, files)
    unlabelled = (UNKNOWN_SPEAKER, None, "")
    self.info.features["speaker"].names = sorted({labels.get(file, unlabelled)[0] for file in files})
    counts = {}
    splits = {}
    for file in files:
      speaker, gender, tags = labels.get(file, unlabelled)
      index = counts[speaker] = counts.get(speaker, -1) + 1
      path = os.path.join(root, file)
      item = (path, file, speaker, gender, tags)
      splits.setdefault(schema.split_of(index), []).append((item, sharded.pcm_bytes(path)))
    return splits

  def _example(self, item):
    path, file, speaker, gender, tags = item
    return file, {
        "audio": dsp.to_int16(dsp.load_audio(path, schema.SAMPLE_RATE)),
        "speaker": speaker,
        "gender": -1 if gender is None else gender,
        "tags": tags,
        "file": file,
    }
