"""Male-to-female interpolation in an audio VLAE: does the median F0 rise along the path?

    python -m benchmarks.bench_vlae_interpolation --checkpoint runs/vlae_small_fb [--pairs 5] [--steps 7] \
        [--temperature 1.0] [--out out/vlae_pairs]

Pair k joins the first test-split utterance of the k-th male speaker to the
first of the k-th female speaker (corpus order), written to --out/inputs with a
spectrogram PNG beside each; one more row follows the path between the gender
means. Each path runs through `experiments.interpolate`
(slerp, one PRNG key for every step), whose WAVs, spectrograms and path.json go
to --out/NAME. Prints one table: the median F0 (pYIN) of both input clips,
of every decoded step (- where pYIN finds no voiced frame), and the Spearman
correlation of F0 with the step.
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
from experiments import interpolate
from vlae import audio, audio_inference


def _read_json(path):
  with open(path) as file:
    return json.load(file)


def _fmt(value):
  return "-" if value is None or not np.isfinite(value) else f"{value:.0f}"


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_vlae_interpolation", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", default=audio_inference.DEFAULT_CHECKPOINT, help=audio_inference.DEFAULT_CHECKPOINT_HELP)
  parser.add_argument("--pairs", type=int, default=5, help="male/female pairs (default 5)")
  parser.add_argument("--steps", type=int, default=7, help="points per path (default 7)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed of the decoding (default 0)")
  parser.add_argument("--temperature", type=cli.positive_float, default=1.0,
                      help="decoder softmax temperature, > 0 (default 1)")
  parser.add_argument("--data-dir", help="corpus data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", default="out/vlae_pairs", help="output directory (default out/vlae_pairs)")
  args = parser.parse_args(argv)
  if args.pairs < 1 or args.steps < 2:
    raise InputError(f"--pairs must be at least 1 and --steps at least 2, got {args.pairs} and {args.steps}")
  _, _, labels = audio_inference.load_vlae(args.checkpoint)
  name, config = labels["corpus"]["name"], labels["corpus"]["config"]
  clips = batching.preload(corpora.load_split(name, config, "test", args.data_dir))
  speakers = corpora.speaker_names(name, config, args.data_dir)
  genders = corpora.gender_names()
  firsts = {gender: [int(np.flatnonzero(clips.speaker == speaker)[0]) for speaker in sorted(set(clips.speaker.tolist()))
                     if genders[clips.gender[clips.speaker == speaker][0]] == gender] for gender in ("male", "female")}
  if min(len(firsts["male"]), len(firsts["female"])) < args.pairs:
    raise InputError(f"the test split has {len(firsts['male'])} male and {len(firsts['female'])} female speakers; "
                     f"ask for at most {min(len(firsts['male']), len(firsts['female']))} --pairs")
  inputs = os.path.join(args.out, "inputs")
  cli.make_output_dir(inputs)
  common = ["--checkpoint", args.checkpoint, "--steps", str(args.steps), "--seed", str(args.seed),
            "--temperature", str(args.temperature)]
  if args.data_dir:
    common += ["--data-dir", args.data_dir]
  rows = []
  for pair in range(args.pairs):
    ends = []
    for gender in ("male", "female"):
      index = firsts[gender][pair]
      clip = dsp.from_int16(clips.samples[clips.starts[index]:clips.starts[index] + clips.lengths[index]])
      path = os.path.join(inputs, f"{speakers[clips.speaker[index]]}_{index}.wav")
      dsp.save_audio(path, clip, audio.SAMPLE_RATE)
      dsp.save_spectrogram_png(path[:-len(".wav")] + ".png", clip, audio.SAMPLE_RATE,
                               f"input: {genders[clips.gender[index]]} {speakers[clips.speaker[index]]}, test {index}")
      ends.append((path, dsp.median_f0(audio_inference.central_crop(clip, 8000), audio.SAMPLE_RATE)))
    label = f"{os.path.basename(ends[0][0])[:-4]} -> {os.path.basename(ends[1][0])[:-4]}"
    out = os.path.join(args.out, f"pair_{pair}")
    interpolate.main(common + ["--a", ends[0][0], "--b", ends[1][0], "--out", out])
    rows.append((label, ends[0][1], ends[1][1], _read_json(os.path.join(out, "path.json"))))
  out = os.path.join(args.out, "gender_means")
  interpolate.main(common + ["--from-gender", "male", "--to-gender", "female", "--out", out])
  rows.append(("male mean -> female mean", float("nan"), float("nan"), _read_json(os.path.join(out, "path.json"))))

  print(f"\ncheckpoint {args.checkpoint}, temperature {args.temperature}; "
        "median F0 in Hz of the central 0.5 s of each input and of each decoded step")
  print("| path | F0 of A | F0 of B | " + " | ".join(f"step {step}" for step in range(args.steps)) + " | Spearman |")
  print("|---" * (args.steps + 4) + "|")
  for label, f0_a, f0_b, result in rows:
    steps = " | ".join(_fmt(value) for value in result["median_f0_hz"])
    spearman = result["spearman_f0_vs_step"]
    print(f"| {label} | {_fmt(f0_a)} | {_fmt(f0_b)} | {steps} | {'-' if spearman is None else f'{spearman:.2f}'} |")


if __name__ == "__main__":
  cli.run(main)
