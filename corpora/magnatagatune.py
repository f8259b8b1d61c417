"""`magnatagatune`: a local copy of MagnaTagATune, top-50 tags, read through TFDS's manual_dir.

The manual dir holds
  annotations_final.csv   tab-separated, quoted: clip_id, 188 tag columns of 0/1, mp3_path
  0/ ... f/               the mp3 folders, with the files named by mp3_path
The top-50 tags are the 50 columns with the most 1s (ties: by column order).
The standard split goes by the mp3 folder's first hex digit: 0-b train, c
validation, d-f test. Audio is decoded by libsndfile (MP3 needs libsndfile >=
1.1) and resampled to 16 kHz mono; clips whose mp3 is missing or cannot be
decoded (the public copy has a few empty files) are skipped with a warning, and
a split none of whose mp3s opens is an error naming the first file. Splits are
written shard by shard in annotation order (`corpora.sharded`), so the full
copy builds without TensorFlow.

Records: audio [n] int16 at 16 kHz (stored as raw bytes), tags [50] uint8
multi-hot (names in the dataset's metadata under "tags"), piece (Text, the
mp3_path), composer (Text, '' here: the annotations do not name artists).
"""

import csv
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

import dsp
from common.errors import InputError
from corpora import schema, sharded

ANNOTATIONS = "annotations_final.csv"
NUM_TAGS = 50
_SPLIT_OF_FOLDER = {**{digit: "train" for digit in "0123456789ab"}, "c": "validation",
                    **{digit: "test" for digit in "def"}}


def read_annotations(root, num_tags=NUM_TAGS):
  """Reads `root/annotations_final.csv`.

  Returns:
    (tag names, rows): the `num_tags` most frequent tags, most frequent first,
    and [(clip_id, mp3_path, [num_tags] uint8 multi-hot)] in file order.

  Raises:
    InputError: no annotations file, a header without clip_id and mp3_path,
      fewer than `num_tags` tag columns, or a malformed row.
  """
  path = os.path.join(root, ANNOTATIONS)
  if not os.path.isfile(path):
    raise InputError(f"{root}: has no {ANNOTATIONS}; point --manual-dir at your MagnaTagATune copy")
  with open(path, newline="", encoding="utf-8") as handle:
    reader = csv.reader(handle, delimiter="\t")
    header = next(reader, [])
    if len(header) < 2 or header[0] != "clip_id" or header[-1] != "mp3_path":
      raise InputError(f"{path}: header must start with clip_id and end with mp3_path; is it tab-separated?")
    tag_columns = header[1:-1]
    if len(tag_columns) < num_tags:
      raise InputError(f"{path}: has {len(tag_columns)} tag columns, fewer than {num_tags}")
    ids, paths, values = [], [], []
    for line, row in enumerate(reader, start=2):
      if not row:
        continue
      if len(row) != len(header) or any(value not in ("0", "1") for value in row[1:-1]):
        raise InputError(f"{path} line {line}: expected {len(header)} tab-separated fields with 0/1 tags")
      ids.append(row[0])
      paths.append(row[-1])
      values.append([int(value) for value in row[1:-1]])
  values = np.array(values, dtype=np.uint8).reshape(len(ids), len(tag_columns))
  top = np.argsort(-values.sum(axis=0).astype(np.int64), kind="stable")[:num_tags]
  names = [tag_columns[column] for column in top]
  return names, [(clip_id, mp3, values[row, top]) for row, (clip_id, mp3) in enumerate(zip(ids, paths))]


def split_of(mp3_path):
  """'train', 'validation' or 'test' from the mp3 folder's first hex digit; None for other folders."""
  return _SPLIT_OF_FOLDER.get(mp3_path[:1].lower())


class MagnaTagATune(sharded.Builder, skip_registration=True):
  """MagnaTagATune from a local copy; see the module docstring."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Audio as a list of integers; splits shuffled by TFDS, which needs TensorFlow past 1 GiB.",
      "1.1.0": "Audio stored as raw int16 bytes (a third of the size); records in annotation order, written shard "
               "by shard, so the full copy builds without TensorFlow.",
  }
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="top50", description="the 50 most frequent tags, 16 kHz")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download MagnaTagATune (https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset): "
      f"{ANNOTATIONS} and the mp3.zip parts, unzip the parts into one folder and pass it as the manual dir.")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": schema.audio_feature(encoding="bytes"),
            "tags": tfds.features.Tensor(shape=(NUM_TAGS,), dtype=np.uint8),
            "piece": tfds.features.Text(),
            "composer": tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(),
        homepage="https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset",
    )

  def _split_sources(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    names, rows = read_annotations(root)
    self.info.metadata["tags"] = names
    splits, unreadable = {}, {}
    for clip_id, mp3_path, tags in rows:
      split = split_of(mp3_path)
      path = os.path.join(root, mp3_path)
      if split is None or not os.path.isfile(path):
        continue
      try:
        size = sharded.pcm_bytes(path)
      except InputError as error:
        unreadable.setdefault(split, []).append(str(error))
        continue
      splits.setdefault(split, []).append(((path, clip_id, mp3_path, tags), size))
    if not splits and not unreadable:
      raise InputError(f"{root}: none of the mp3 files named in {ANNOTATIONS} is there; unzip the mp3 folders into it")
    for split, errors in unreadable.items():
      if split not in splits:
        raise InputError(f"{split}: no mp3 of this split decodes, e.g. {errors[0]}; "
                         "does your libsndfile read MP3 (>= 1.1)?")
    skipped = [error for errors in unreadable.values() for error in errors]
    if skipped:
      logging.warning("skipped %d unreadable mp3 files, e.g. %s", len(skipped), skipped[0])
    return splits

  def _example(self, item):
    path, clip_id, mp3_path, tags = item
    try:
      audio = dsp.load_audio(path, schema.SAMPLE_RATE)
    except InputError as error:
      logging.warning("skipped an mp3 that opens but does not decode: %s", error)
      return None
    return clip_id, {"audio": dsp.to_int16(audio), "tags": tags, "piece": mp3_path, "composer": ""}
