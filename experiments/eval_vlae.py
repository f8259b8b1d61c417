"""Evaluate trained audio VLAEs: one table row each (validation bits/sample, KL, linear probes).

    python -m experiments.eval_vlae --workdir runs/vlae_small_fb runs/vlae_small_nofb ...

For each workdir: the negative ELBO in bits per sample and the KL in bits per
clip over one central crop of every validation utterance, and the accuracy of
logistic-regression probes of gender and speaker from the posterior mean of
the global latent (fit on the train split, scored on the test split's held-out
utterances; gender on the unseen `heldout_speakers`, speaker there by 5-fold
cross-validation). Crops are the run's training crop unless --crop is given.
Shows a progress bar per run, writes eval.json into each workdir (eval_cropN.json
at another --crop N) and prints a Markdown table. With --untrained, each run's
model is evaluated at its initial parameters instead (eval_untrained.json):
what the probes find in an encoder that never trained.
"""

import argparse

from common import cli
from common.errors import InputError
from vlae.audio_evaluation import evaluate


def _receptive_field_name(field):
  return {16: "small", 256: "medium", 1024: "deep"}.get(field, "custom")


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_vlae", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", nargs="+", required=True,
                      help="training workdirs of experiments.train_vlae (or their checkpoints folders or step folders)")
  parser.add_argument("--crop", type=int,
                      help="samples per evaluation crop (default: the run's training crop, from its checkpoint)")
  parser.add_argument("--batch-size", type=int, default=8, help="crops per forward pass (default 8)")
  parser.add_argument("--untrained", action="store_true",
                      help="evaluate each run's model at its initial parameters (a baseline for the probes)")
  parser.add_argument("--data-dir", help="corpus data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  args = parser.parse_args(argv)
  if (args.crop is not None and args.crop < 1) or args.batch_size < 1:
    raise InputError(f"--crop and --batch-size must be positive, got {args.crop} and {args.batch_size}")
  rows = [evaluate(workdir, args.crop, args.batch_size, args.data_dir, untrained=args.untrained)
          for workdir in args.workdir]
  print("| run | decoder (receptive field) | step | val bits/sample | KL bits/clip | gender probe, test | "
        "speaker probe, test | gender probe, heldout speakers | speaker probe, heldout speakers |")
  print("|---|---|---|---|---|---|---|---|---|")
  for row in rows:
    print(f"| {row['workdir']} | {_receptive_field_name(row['receptive_field'])} ({row['receptive_field']}) | "
          f"{row['step']} | {row['validation_bits_per_sample']:.3f} | {row['validation_kl_bits_per_clip']:.1f} | "
          f"{row['gender_probe_test']:.1%} | {row['speaker_probe_test']:.1%} | "
          f"{row['gender_probe_heldout_speakers']:.1%} | {row['speaker_probe_heldout_speakers']:.1%} |")


if __name__ == "__main__":
  cli.run(main)
