"""Builds a corpus into the TFDS data dir, then prints its speakers, size and build time.

examples:
  python -m experiments.build_corpus --name voices --config full
  python -m experiments.build_corpus --name vctk --config default --manual-dir ~/VCTK-Corpus-0.92
  python -m experiments.build_corpus --name folder --config drums --manual-dir ~/drums
  python -m experiments.build_corpus --name music --config full
  python -m experiments.build_corpus --name magnatagatune --config top50 --manual-dir ~/magnatagatune

Tagged corpora (music, magnatagatune) print their clips per split and tag counts instead.
"""

import argparse
import os
import time

import numpy as np

import corpora
from common import cli


def _directory_bytes(path):
  return sum(os.path.getsize(os.path.join(directory, name))
             for directory, _, names in os.walk(path) for name in names)


def speaker_table(corpus):
  """Reads every record of a built corpus and summarises it per speaker.

  Returns:
    (rows, n_utterances, n_samples): rows of (speaker, gender, engine,
    utterances, per-split counts, median F0 in Hz or None), in label order.
  """
  speakers = corpus.info.features["speaker"].names
  features = corpus.info.features
  stats = {}
  n_samples = 0
  for split in corpus.info.splits:
    for record in corpus.as_data_source(split=split):
      entry = stats.setdefault(int(record["speaker"]), {"gender": int(record["gender"]), "splits": {}, "f0": [],
                                                       "engine": record.get("engine", b"-").decode()})
      entry["splits"][split] = entry["splits"].get(split, 0) + 1
      if "median_f0" in features:
        entry["f0"].append(float(record["median_f0"]))
      n_samples += len(record["audio"])
  rows = []
  for label, entry in sorted(stats.items()):
    gender = "unknown" if entry["gender"] < 0 else corpora.gender_names()[entry["gender"]]
    splits = ", ".join(f"{split} {count}" for split, count in entry["splits"].items())
    f0 = float(np.nanmedian(entry["f0"])) if entry["f0"] else None
    rows.append((speakers[label], gender, entry["engine"], sum(entry["splits"].values()), splits, f0))
  return rows, sum(row[3] for row in rows), n_samples


def print_table(rows):
  header = ("speaker", "gender", "engine", "utterances", "splits", "median F0 (Hz)")
  cells = [header] + [(name, gender, engine, str(count), splits, "-" if f0 is None else f"{f0:.1f}")
                      for name, gender, engine, count, splits, f0 in rows]
  widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
  for row in cells:
    print("  ".join(cell.rjust(width) if column in (3, 5) else cell.ljust(width)
                    for column, (cell, width) in enumerate(zip(row, widths))).rstrip())


def tag_table(corpus):
  """Clips per split and clips per tag of a tagged corpus: (split counts, [(tag, count)], n_samples).

  A tagged corpus names its multi-hot tags in `info.metadata["tags"]` (folder's
  free-text `tags` feature is not one).
  """
  names = list(corpus.info.metadata["tags"])
  split_counts, tag_counts, n_samples = {}, np.zeros(len(names), np.int64), 0
  for split in corpus.info.splits:
    records = corpus.as_data_source(split=split)
    split_counts[split] = len(records)
    for record in records:
      tag_counts += record["tags"]
      n_samples += len(record["audio"])
  return split_counts, list(zip(names, tag_counts.tolist())), n_samples


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.build_corpus", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--name", required=True, help=f"corpus: {', '.join(sorted(corpora.BUILDERS))}")
  parser.add_argument("--config", required=True,
                      help="voices, music: small or full; vctk: default; magnatagatune: top50; "
                      "folder: a label of your choice")
  parser.add_argument("--data-dir", help=f"TFDS data dir (default: ${corpora.DATA_DIR_ENV} or {corpora.DEFAULT_DATA_DIR})")
  parser.add_argument("--manual-dir", help="source folder, for vctk (the unpacked corpus) and folder (your audio)")
  parser.add_argument("--force", action="store_true", help="rebuild even if the corpus is already built")
  args = parser.parse_args(argv)

  already_built = corpora.is_built(corpora.builder(args.name, args.config, args.data_dir)) and not args.force
  start = time.perf_counter()
  corpus = corpora.build(args.name, args.config, args.data_dir, args.manual_dir, force=args.force)
  wall = time.perf_counter() - start
  size = _directory_bytes(os.fspath(corpus.data_dir)) / 2**20
  timing = "already built (--force rebuilds it)" if already_built else f"built in {wall:.0f} s"
  print()
  if "tags" in (corpus.info.metadata or {}):
    split_counts, tag_counts, n_samples = tag_table(corpus)
    print("clips per split: " + ", ".join(f"{split} {count}" for split, count in split_counts.items()))
    print("clips per tag:   " + ", ".join(f"{tag} {count}" for tag, count in tag_counts))
    summary = f"{sum(split_counts.values())} clips"
  else:
    rows, n_utterances, n_samples = speaker_table(corpus)
    print_table(rows)
    summary = f"{len(rows)} speaker{'' if len(rows) == 1 else 's'}, {n_utterances} utterances"
  hours = n_samples / corpora.schema.SAMPLE_RATE / 3600
  print(f"\n{args.name}/{args.config}: {summary}, {hours:.2f} h of audio, "
        f"{size:.1f} MiB in {corpus.data_dir}; {timing}")


if __name__ == "__main__":
  cli.run(main)
