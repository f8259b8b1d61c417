"""Builders that write a split shard by shard, for corpora read from the user's files.

`tfds.core.GeneratorBasedBuilder` passes every split through TFDS's shuffler,
which holds up to 1 GiB of serialized records in memory and past that spills to
disk through TensorFlow (not installed here). `Builder` is a
`tfds.core.ShardBasedBuilder` instead: it groups each split's source files, in
their given order, into shards of about `SHARD_BYTES` of PCM (estimated from
the files' headers) and writes every shard straight to its array_record file,
so a split of any size builds while one shard at a time is held in memory.
Records stay in source order on disk; training shuffles (`corpora.batching`).
"""

import abc
import functools
import inspect
import math

import soundfile as sf
import tensorflow_datasets as tfds
import tqdm
from etils import epath

from common.errors import InputError
from corpora import schema

# Estimated int16 PCM per shard (about 70 minutes at 16 kHz): TFDS keeps a
# shard's records in memory until the shard is written.
SHARD_BYTES = 128 << 20
# One record is one protobuf message, which must stay under 2 GiB; its audio
# is int16 PCM at schema.SAMPLE_RATE (2 bytes per sample, about 9.3 hours).
MAX_RECORD_BYTES = 1 << 30


def pcm_bytes(path):
  """Estimated size of an audio file as mono int16 PCM at `schema.SAMPLE_RATE`.

  Only the file's header is read (its frame count and rate).

  Args:
    path: any file libsndfile opens (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1).

  Returns:
    int bytes, 2 per output sample.

  Raises:
    InputError: the file does not open as audio, or it is longer than one
      record holds (`MAX_RECORD_BYTES`).
  """
  try:
    info = sf.info(path)
  except (RuntimeError, TypeError) as error:  # sf.LibsndfileError is a RuntimeError
    raise InputError(f"{path}: not a readable audio file ({error}); replace or remove it") from None
  size = 2 * math.ceil(info.frames * schema.SAMPLE_RATE / info.samplerate)
  if size > MAX_RECORD_BYTES:
    hours = MAX_RECORD_BYTES / 2 / schema.SAMPLE_RATE / 3600
    raise InputError(f"{path}: {info.duration / 3600:.1f} h of audio, more than one record holds ({hours:.1f} h); "
                     "cut it into shorter files")
  return size


def shard_ranges(sizes, shard_bytes):
  """Splits consecutive items into shards of at most `shard_bytes` each.

  Args:
    sizes: [n_items] estimated bytes per item, in write order.
    shard_bytes: the most bytes per shard; an item larger than this gets a
      shard of its own.

  Returns:
    [(start, stop)] item index ranges covering 0 .. n_items - 1 in order.
  """
  ranges = []
  start, total = 0, 0
  for index, size in enumerate(sizes):
    if index > start and total + size > shard_bytes:
      ranges.append((start, index))
      start, total = index, 0
    total += size
  if len(sizes) > start:
    ranges.append((start, len(sizes)))
  return ranges


class Builder(tfds.core.ShardBasedBuilder, skip_registration=True):
  """Base class of the corpora whose size the user controls (unregistered).

  Subclasses define `_info`, `_split_sources` and `_example`.
  """

  # As in schema.Builder: tfds 4.9.10 finds a packaged builder's code through
  # the `importlib_resources` backport, which it does not install on Python >= 3.9.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    return epath.Path(inspect.getfile(cls))

  @abc.abstractmethod
  def _split_sources(self, dl_manager):
    """The items of every split, in write order, each with its estimated size.

    Returns:
      {split name: [(item, estimated PCM bytes)]}, no split empty; an item is
      whatever `_example` reads, the bytes usually come from `pcm_bytes`.
    """

  @abc.abstractmethod
  def _example(self, item):
    """Reads one item: (key, record dict), or None to leave it out."""

  def _shard_iterators_per_split(self, dl_manager):
    """{split: [one generator function per shard]}, shards of about `SHARD_BYTES` in write order."""
    sources = self._split_sources(dl_manager)
    progress = tqdm.tqdm(total=sum(len(items) for items in sources.values()),
                         desc=f"writing {self.name}/{self.builder_config.name}", unit="file")
    shards = {}
    for split, items in sources.items():
      ranges = shard_ranges([size for _, size in items], SHARD_BYTES)
      shards[split] = [functools.partial(self._shard_examples, [item for item, _ in items[start:stop]], progress)
                       for start, stop in ranges]
    return shards

  def _shard_examples(self, items, progress):
    """Yields (key, record) for `items` in order, ticking `progress` once per item."""
    for item in items:
      keyed = self._example(item)
      progress.update()
      if keyed is not None:
        yield keyed
    if progress.n == progress.total:
      progress.close()
