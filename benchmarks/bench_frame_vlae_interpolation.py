"""Male-to-female paths in the frame-rate VLAE, on voices it never heard: the interpolation targets.

    python -m benchmarks.bench_frame_vlae_interpolation [--checkpoint models/frame_vlae] [--pairs 5] [--steps 7] \
        [--out out/frame_vlae_pairs]

Two sets of --pairs male-to-female pairs: utterances of the held-out
speakers (espeak_m7 -> espeak_f5, the k-th utterance of each, at least 2 s),
and voices of engine variants in no split (corpora.voices.roster.UNSEEN_VARIANTS,
rendered now, male k -> female k, cycling). Each path runs through
`experiments.interpolate` (slerp, one PRNG key for every step; its WAVs, PNGs,
f0_path.png and path.json go to --out/SET_k). Prints one row per path: the
inputs' median F0, every step's median F0, the lowest voiced share of a step,
the Spearman correlation of F0 with the step and the end steps' F0 error
against their inputs; then how many paths meet each target (every step
voiced in >= 20% of frames; Spearman >= 0.8; both ends within 15%).
"""

import argparse
import json
import os

import numpy as np

import corpora
import dsp
from common import cli
from common.errors import InputError
from corpora import batching
from corpora.schema import SAMPLE_RATE
from corpora.voices import render, roster, sentences
from experiments import interpolate

UNSEEN_SENTENCE_SEED = 7  # sentences of the unseen voices' pairs (not the corpus's)


def heldout_pairs(count, data_dir):
  """[(name, male audio, female audio)] from the heldout_speakers split, utterances of at least 2 s."""
  clips = batching.preload(corpora.load_split("voices", "full", "heldout_speakers", data_dir))
  long = clips.lengths >= 2 * SAMPLE_RATE
  male = np.flatnonzero(long & (clips.gender == corpora.gender_names().index("male")))
  female = np.flatnonzero(long & (clips.gender == corpora.gender_names().index("female")))
  return [(f"heldout_{k}", clips.clip(male[k]), clips.clip(female[k])) for k in range(count)]


def unseen_pairs(count):
  """[(name, male audio, female audio)] of the unseen engine variants, male k -> female k (cycling)."""
  males = [s for s in roster.UNSEEN_VARIANTS if s.gender == "male"]
  females = [s for s in roster.UNSEEN_VARIANTS if s.gender == "female"]
  texts = list(enumerate(sentences.make_sentences(2 * count, UNSEEN_SENTENCE_SEED)))
  pairs = []
  for k in range(count):
    male, female = males[k % len(males)], females[k % len(females)]
    a = render.render(male, [texts[2 * k]])[0].pcm
    b = render.render(female, [texts[2 * k + 1]])[0].pcm
    pairs.append((f"unseen_{k}_{male.name}_to_{female.name}", dsp.from_int16(a), dsp.from_int16(b)))
  return pairs


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_frame_vlae_interpolation", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", default=interpolate.SHIPPED_FRAME_VLAE, help="frame-rate VLAE")
  parser.add_argument("--vocoder", default=None, help="vocoder (default: interpolate's)")
  parser.add_argument("--pairs", type=int, default=5, help="pairs per set (default 5)")
  parser.add_argument("--steps", type=int, default=7, help="points per path (default 7)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed of the decoding (default 0)")
  parser.add_argument("--data-dir", help="corpus data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", default="out/frame_vlae_pairs", help="output directory")
  args = parser.parse_args(argv)
  if not 1 <= args.pairs <= 20 or args.steps < 2:
    raise InputError(f"--pairs must be 1 to 20 and --steps at least 2, got {args.pairs} and {args.steps}")
  cli.make_output_dir(os.path.join(args.out, "inputs"))
  rows = []
  for set_name, pairs in (("held-out speakers", heldout_pairs(args.pairs, args.data_dir)),
                          ("unseen variants", unseen_pairs(args.pairs))):
    for name, a, b in pairs:
      paths = []
      for end, clip in (("a", a), ("b", b)):
        paths.append(os.path.join(args.out, "inputs", f"{name}_{end}.wav"))
        dsp.save_audio(paths[-1], clip, SAMPLE_RATE)
        dsp.save_spectrogram_png(paths[-1][:-4] + ".png", clip, SAMPLE_RATE, f"{name} {end}")
      out = os.path.join(args.out, name)
      command = ["--checkpoint", args.checkpoint, "--a", paths[0], "--b", paths[1], "--steps", str(args.steps),
                 "--seed", str(args.seed), "--out", out] + (["--vocoder", args.vocoder] if args.vocoder else [])
      interpolate.main(command)
      with open(os.path.join(out, "path.json")) as file:
        rows.append((set_name, name, json.load(file)))
  print("\n| set | path | F0 of A | F0 of B | " + " | ".join(f"step {s}" for s in range(args.steps))
        + " | least voiced step | Spearman | end errors |")
  print("|---" * (args.steps + 7) + "|")
  met = {}
  fmt = lambda v: "-" if v is None else f"{v:.0f}"
  for set_name, name, result in rows:
    f0 = result["median_f0_hz"]
    f0_a, f0_b = result["input_median_f0_hz"]
    errors = [abs(f0[0] / f0_a - 1) if f0[0] else np.inf, abs(f0[-1] / f0_b - 1) if f0[-1] else np.inf]
    spearman = result["spearman_f0_vs_step"]
    least_voiced = min(result["voiced_share"])
    checks = (least_voiced >= 0.2, spearman is not None and spearman >= 0.8, max(errors) <= 0.15)
    tally = met.setdefault(set_name, [0, 0, 0, 0])
    for i, ok in enumerate(checks):
      tally[i] += ok
    tally[3] += 1
    print(f"| {set_name} | {name} | {fmt(f0_a)} | {fmt(f0_b)} | " + " | ".join(fmt(v) for v in f0)
          + f" | {100 * least_voiced:.0f}% | {'-' if spearman is None else f'{spearman:.2f}'} | "
          + f"{100 * errors[0]:.0f}%, {100 * errors[1]:.0f}% |")
  print()
  for set_name, (voiced, rising, ends, total) in met.items():
    print(f"{set_name}: every step voiced >= 20%: {voiced} of {total}; Spearman >= 0.8: {rising} of {total}; "
          f"both ends within 15%: {ends} of {total}")


if __name__ == "__main__":
  cli.run(main)
