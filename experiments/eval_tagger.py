"""Per-tag ROC-AUC of a trained tagger on a split of its corpus (scikit-learn), as a table, a JSON and a bar chart.

examples:
  python -m experiments.eval_tagger --workdir runs/tagger_raw
  python -m experiments.eval_tagger --checkpoint runs/tagger_raw/checkpoints/2000 --split validation --out out/auc
  python -m experiments.eval_tagger --workdir runs/tagger_raw --select-on validation

Each clip's score for a tag is the mean sigmoid over windows tiling the clip.
With --select-on SPLIT, every checkpoint kept in WORKDIR is scored on SPLIT
and the one with the highest mean ROC-AUC (the earliest on ties) is the one
evaluated on --split.
Writes OUT/roc_auc.md (the table), OUT/roc_auc.json (per-tag and mean
ROC-AUC, with the checkpoint, corpus and split) and OUT/roc_auc.png (the bar
chart); OUT defaults to WORKDIR/eval_SPLIT. Tags present in every clip of the
split, or in none, have no ROC-AUC and are left out of the mean.
"""

import argparse
import os
import time

import numpy as np

import corpora
from common import cli
from common.errors import InputError
from common.files import atomic_path, save_json
from corpora import tagging
from tagger import evaluate
from tagger.pretrained import load_tagger
from training.checkpoint import checkpoint_steps, locate_checkpoint


def split_clips(corpus_name, corpus_config, split, data_dir):
  """The `tagging.TaggedClips` of one split."""
  return tagging.preload(corpora.load_split(corpus_name, corpus_config, split, data_dir))


def select_checkpoint(workdir, split, data_dir, batch_size, window):
  """The kept checkpoint of `workdir` with the highest mean ROC-AUC on `split`.

  Returns:
    (its folder, [(step, mean ROC-AUC)] of every kept checkpoint).
  """
  scores, clips = [], None
  steps = checkpoint_steps(os.path.join(workdir, "checkpoints"))
  if not steps:
    raise InputError(f"{workdir}: holds no checkpoints to select from; pass a workdir of experiments.train_tagger")
  for step in steps:
    model, params, _, (corpus_name, corpus_config) = load_tagger(os.path.join(workdir, "checkpoints", str(step)))
    clips = clips or split_clips(corpus_name, corpus_config, split, data_dir)
    _, mean = evaluate.roc_auc_per_tag(clips.tags, evaluate.predict(model, params, clips, batch_size, window))
    print(f"step {step}: mean ROC-AUC on {split} {mean:.4f}")
    scores.append((step, mean))
  best_step = max(scores, key=lambda pair: (pair[1], -pair[0]))[0]
  print(f"selected step {best_step} on {split}")
  return os.path.join(workdir, "checkpoints", str(best_step)), scores


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_tagger", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", help="training run directory (its newest checkpoint)")
  source.add_argument("--checkpoint", help="a checkpoints folder or one step's folder")
  parser.add_argument("--split", default="test", help="split of the checkpoint's corpus (default test)")
  parser.add_argument("--data-dir", help=f"TFDS data dir (default: ${corpora.DATA_DIR_ENV} or {corpora.DEFAULT_DATA_DIR})")
  parser.add_argument("--window", type=int, default=64000, help="samples per evaluation window (default a 4 s clip)")
  parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
  parser.add_argument("--select-on", help="with --workdir: choose the kept checkpoint with the best mean ROC-AUC on "
                      "this split (e.g. validation), then evaluate it on --split")
  parser.add_argument("--out", help="output folder (default WORKDIR/eval_SPLIT)")
  args = parser.parse_args(argv)
  if args.window < 1 or args.batch_size < 1:
    raise InputError("--window and --batch-size must be at least 1")
  if args.select_on and not args.workdir:
    raise InputError("--select-on needs --workdir (a training run whose kept checkpoints to choose from)")
  if args.select_on == args.split:
    raise InputError(f"--select-on {args.select_on} is the split being evaluated; select on another (e.g. validation)")
  path, selection = args.workdir or args.checkpoint, None
  if args.select_on:
    path, selection = select_checkpoint(args.workdir, args.select_on, args.data_dir, args.batch_size, args.window)
  model, params, names, (corpus_name, corpus_config) = load_tagger(path)
  if len(names) != model.num_tags:
    raise InputError(f"{path}: checkpoint has {model.num_tags} outputs but {len(names)} tag names; retrain it")
  if tagging.tag_names(corpus_name, corpus_config, args.data_dir) != names:
    raise InputError(f"corpus {corpus_name}/{corpus_config} in {corpora.resolve_data_dir(args.data_dir)} has other "
                     "tags than the checkpoint; pass the --data-dir it was trained on")
  clips = split_clips(corpus_name, corpus_config, args.split, args.data_dir)
  out = args.out or os.path.join(args.workdir or locate_checkpoint(path)[0], f"eval_{args.split}")
  with cli.output_dir(out, "output directory") as staging:

    start = time.perf_counter()
    scores = evaluate.predict(model, params, clips, args.batch_size, args.window)
    auc, mean = evaluate.roc_auc_per_tag(clips.tags, scores)
    seconds = time.perf_counter() - start
    table = evaluate.auc_table(names, auc, clips.tags.sum(axis=0))
    print(table)
    print(f"\nmean ROC-AUC over {int(np.isfinite(auc).sum())} tags: {mean:.4f} ({len(clips)} {args.split} clips of "
          f"{corpus_name}/{corpus_config}, frontend {model.frontend}, {seconds:.1f} s)")
    with atomic_path(os.path.join(staging, "roc_auc.md"), ".md") as temporary, open(temporary, "w") as handle:
      handle.write(table + f"\n\nmean ROC-AUC: {mean:.4f}\n")
    result = {"checkpoint": os.path.abspath(path), "corpus": f"{corpus_name}/{corpus_config}", "split": args.split,
              "frontend": model.frontend, "clips": len(clips), "mean_roc_auc": mean,
              "roc_auc": {name: None if np.isnan(value) else float(value) for name, value in zip(names, auc)}}
    if selection:
      result["selected_on"] = {"split": args.select_on, "mean_roc_auc": {str(step): mean for step, mean in selection}}
    save_json(os.path.join(staging, "roc_auc.json"), result)
    evaluate.save_auc_chart(os.path.join(staging, "roc_auc.png"), names, auc, mean,
                            f"{corpus_name}/{corpus_config} {args.split}, {model.frontend} frontend")
    print(f"wrote {out}/roc_auc.md, roc_auc.json, roc_auc.png")


if __name__ == "__main__":
  cli.run(main)
