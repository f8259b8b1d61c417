"""Teacher-forced bits per sample of a trained WaveNet on a corpus split, by speaker and gender.

examples:
  python -m experiments.eval_wavenet
  python -m experiments.eval_wavenet --checkpoint runs/wavenet_voices --split test --max-windows 0

Windows are the split's fixed evaluation crops (`corpora.batching.eval_windows`),
evenly thinned to --max-windows over the whole split. For a model conditioned
on speaker, a second column scores the same windows with the speaker absent
(gender only), the condition `sample_garble --gender` samples from.
"""

import argparse

import numpy as np

import corpora
from common import cli
from common.errors import InputError
from corpora import batching
from wavenet import evaluate, pretrained
from wavenet.train import global_names


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_wavenet", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", default=pretrained.SHIPPED_CHECKPOINT,
                      help="training workdir or checkpoint folder (default: the shipped models/wavenet_voices)")
  parser.add_argument("--corpus", default="voices", help="corpus the model was trained on (default voices)")
  parser.add_argument("--corpus-config", default="full", help="its config (default full)")
  parser.add_argument("--split", default="validation", help="split to score (default validation)")
  parser.add_argument("--data-dir", help=f"TFDS data dir (default: ${corpora.DATA_DIR_ENV} or {corpora.DEFAULT_DATA_DIR})")
  parser.add_argument("--crop", type=int, default=4000, help="predicted samples per window (default 4000, as in training)")
  parser.add_argument("--max-windows", type=int, default=400,
                      help="windows scored, evenly spread over the split; 0 scores all (default 400)")
  parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
  args = parser.parse_args(argv)
  if args.crop < 1 or args.batch_size < 1 or args.max_windows < 0:
    raise InputError("--crop and --batch-size must be at least 1 and --max-windows at least 0")

  model, params, labels = pretrained.load_wavenet(args.checkpoint)
  speakers = corpora.speaker_names(args.corpus, args.corpus_config, args.data_dir)
  if labels.get("speaker", speakers) != speakers:
    raise InputError(f"{args.checkpoint} was trained on other speakers than {args.corpus}/{args.corpus_config}; "
                     "pass the corpus it was trained on with --corpus and --corpus-config")
  clips = batching.preload(corpora.load_split(args.corpus, args.corpus_config, args.split, args.data_dir))
  names = global_names(model)

  batches = list(batching.eval_batches(clips, args.batch_size, model.receptive_field, args.crop,
                                       max_windows=args.max_windows or None))
  columns = {"bits/sample": evaluate.bits_per_window(model, params, batches, names)}
  if "speaker" in names:
    columns["speaker absent"] = evaluate.bits_per_window(model, params, batches, names, drop_speaker=True)
  first = next(iter(columns.values()))
  genders = corpora.gender_names()
  rows = [(f"{speakers[s]} ({genders[g]})" if g >= 0 else speakers[s], first["speaker"] == s)
          for s, g in sorted(set(zip(first["speaker"].tolist(), first["gender"].tolist())))]
  rows += [(f"all {genders[g]}", first["gender"] == g) for g in sorted(set(first["gender"].tolist())) if g >= 0]
  rows.append(("all", np.ones(len(first["bits"]), bool)))
  width = max(len(name) for name, _ in rows)
  print(f"{args.corpus}/{args.corpus_config} {args.split}: {len(first['bits'])} windows of {args.crop} samples")
  print(f"{'':<{width}} {'windows':>7} " + " ".join(f"{name:>14}" for name in columns))
  for name, mask in rows:
    print(f"{name:<{width}} {int(mask.sum()):>7} " + " ".join(f"{column['bits'][mask].mean():>14.3f}"
                                                            for column in columns.values()))


if __name__ == "__main__":
  cli.run(main)
