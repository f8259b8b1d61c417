"""Garble against its targets: each route and sampling option at several seeds, one row each.

    python -m benchmarks.bench_garble [--num 10] [--seconds 4] [--seeds 0 1] [--out out/bench_garble]

Runs `experiments.sample_garble --gender both` for the frame route (prior +
vocoder) and for the direct route (the sample-level WaveNet) at plain
temperature, with LPCNet's pitch-dependent sharpening (--sharpen 1, and
three times as strong), with its probability floor (--floor 0.002) and with
both; every run's WAVs, PNGs and
summary.json go to --out/ROUTE_OPTIONS_sSEED. A sample meets the target when
its median F0 (pYIN) is in the gender's range (male 85-155 Hz, female
165-255 Hz) and it is voiced in at least 40% of its active frames; the table
counts those per gender, and gives the median voiced share of active frames
and the median active share over each run's samples.
"""

import argparse
import json
import os

import numpy as np

from common import cli
from common.errors import InputError
from experiments import sample_garble

F0_RANGE_HZ = {"male": (85.0, 155.0), "female": (165.0, 255.0)}  # the garble targets' ranges
MIN_VOICED_OF_ACTIVE = 0.4  # the targets' least voiced share of active frames
VARIANTS = {  # name -> sample_garble flags
    "frames": ["--mode", "frames"],
    "direct": ["--mode", "direct"],
    "direct --sharpen 1": ["--mode", "direct", "--sharpen", "1"],
    "direct --sharpen 3": ["--mode", "direct", "--sharpen", "3"],
    "direct --floor 0.002": ["--mode", "direct", "--floor", "0.002"],
    "direct --sharpen 1 --floor 0.002": ["--mode", "direct", "--sharpen", "1", "--floor", "0.002"],
}


def meets_target(sample):
  """Whether one summary.json sample is voiced garble in its gender's F0 range."""
  low, high = F0_RANGE_HZ[sample["gender"]]
  f0, voiced = sample["median_f0_hz"], sample["voiced_share_of_active"]
  return f0 is not None and low <= f0 <= high and voiced is not None and voiced >= MIN_VOICED_OF_ACTIVE


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_garble", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num", type=int, default=10, help="samples per gender (default 10)")
  parser.add_argument("--seconds", type=cli.positive_float, default=4.0, help="seconds per sample (default 4)")
  parser.add_argument("--seeds", type=cli.seed, nargs="+", default=[0, 1], help="PRNG seeds (default 0 1)")
  parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                      help="routes and options to run (default all)")
  parser.add_argument("--temperature", type=cli.positive_float, help="passed on (default: sample_garble's)")
  parser.add_argument("--out", default="out/bench_garble", help="output directory (default out/bench_garble)")
  args = parser.parse_args(argv)
  if not 1 <= args.num <= 64:
    raise InputError(f"--num must be 1 to 64, got {args.num}")
  rows = []
  for variant in args.variants:
    for seed in args.seeds:
      out = os.path.join(args.out, variant.replace(" --", "_").replace(" ", "").replace("--", "") + f"_s{seed}")
      flags = VARIANTS[variant] + ["--gender", "both", "--num", str(args.num), "--seconds", str(args.seconds),
                                   "--seed", str(seed), "--out", out]
      sample_garble.main(flags + ([] if args.temperature is None else ["--temperature", str(args.temperature)]))
      with open(os.path.join(out, "summary.json")) as file:
        rows.append((variant, seed, json.load(file)["samples"]))
  print(f"\n{args.num} samples per gender of {args.seconds:g} s; met: median F0 in range and voiced in >= 40% "
        "of active frames\n")
  print("| route and options | seed | male met | female met | voiced of active (median) | active (median) |")
  print("|---|---|---|---|---|---|")
  for variant, seed, samples in rows:
    met = {g: sum(meets_target(s) for s in samples if s["gender"] == g) for g in F0_RANGE_HZ}
    voiced = np.median([s["voiced_share_of_active"] or 0.0 for s in samples])
    active = np.median([s["active_share"] for s in samples])
    print(f"| {variant} | {seed} | {met['male']} of {args.num} | {met['female']} of {args.num} | "
          f"{100 * voiced:.0f}% | {100 * active:.0f}% |")


if __name__ == "__main__":
  cli.run(main)
