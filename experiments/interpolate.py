"""Interpolate between two voices in the global latent of an audio VLAE and decode the path.

examples:
  python -m experiments.interpolate --a A.wav --b B.wav --steps 7 --mode slerp --out out/interp
  python -m experiments.interpolate --from-gender male --to-gender female --steps 7 --out out/m2f

Each endpoint is a clip (its posterior mean, from its central --crop samples)
or a gender (the mean of the posterior means of that gender's training
utterances). Every point of the path is decoded by the incremental WaveNet
sampler with the same PRNG key, so only z changes from step to step. Writes
step_NN.wav with a spectrogram step_NN.png beside each, path.png (the
spectrograms along the path) and path.json (the latents, the median F0 of
each step and their Spearman correlation with the step), and prints the F0
table.
"""

import argparse
import json
import os

import jax
import numpy as np
import scipy.stats

import dsp
from dsp.errors import InputError
from dsp.files import atomic_path
from experiments import cli
from vlae import audio
from vlae.train_audio import gender_means

DEFAULT_CHECKPOINT = "runs/vlae_small_fb"


def make_output_dir(path):
  """Creates `path` (and parents) or raises InputError if it cannot be written."""
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as error:
    raise InputError(f"--out {path}: cannot create it ({error.strerror}); choose another directory") from None
  if not os.access(path, os.W_OK):
    raise InputError(f"--out {path}: not writable; choose another directory")


def write_json(path, payload):
  """Writes `payload` as indented JSON to `path` atomically."""
  with atomic_path(path, ".json") as temporary, open(temporary, "w") as file:
    json.dump(payload, file, indent=2, sort_keys=True)


def central_crop(clip, crop):
  """The `crop` central samples of `clip: [n]` (all of it when shorter)."""
  start = max(0, (len(clip) - crop) // 2)
  return clip[start:start + crop]


def endpoint(model, params, labels, clip_path, gender, args, flag):
  """(name, z [latent_features + F * local]) of one end of the path: a clip's posterior mean or a gender mean."""
  if clip_path:
    clip = central_crop(dsp.load_audio(clip_path, audio.SAMPLE_RATE), args.crop)
    audio.check_clip(clip, model, clip_path)
    return os.path.basename(clip_path), np.asarray(audio.encode(model, params, clip[None]).mean[0])
  if gender not in labels.get("gender", ()):
    raise InputError(f"{flag} {gender}: unknown gender; known: {', '.join(labels.get('gender', ()))}")
  means = gender_means(model, params, labels, args.crop, args.batch_size, args.data_dir)
  if gender not in means:
    raise InputError(f"{flag} {gender}: the training split has no {gender} utterance")
  return f"{gender} mean", means[gender]


def spearman(values):
  """Spearman correlation of `values` with their index, over the finite ones (NaN if fewer than 3)."""
  index = np.arange(len(values))
  finite = np.isfinite(values)
  if finite.sum() < 3:
    return float("nan")
  return float(scipy.stats.spearmanr(index[finite], np.asarray(values)[finite]).statistic)


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.interpolate", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  start = parser.add_mutually_exclusive_group(required=True)
  start.add_argument("--a", help="audio file at the start of the path")
  start.add_argument("--from-gender", help="start at this gender's mean posterior (female or male)")
  end = parser.add_mutually_exclusive_group(required=True)
  end.add_argument("--b", help="audio file at the end of the path")
  end.add_argument("--to-gender", help="end at this gender's mean posterior (female or male)")
  parser.add_argument("--steps", type=int, default=7, help="points on the path, endpoints included (default 7)")
  parser.add_argument("--mode", choices=["slerp", "lerp"], default="slerp", help="path shape (default slerp)")
  parser.add_argument("--seconds", type=float, default=0.5, help="seconds decoded per step (default 0.5)")
  parser.add_argument("--crop", type=int, default=8000, help="central samples of each clip encoded (default 8000)")
  parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature, > 0 (default 1)")
  parser.add_argument("--seed", type=int, default=0, help="PRNG seed, shared by every step (default 0)")
  parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                      help=f"audio-VLAE training workdir (default {DEFAULT_CHECKPOINT})")
  parser.add_argument("--batch-size", type=int, default=8, help="crops per encoder pass for gender means")
  parser.add_argument("--data-dir", help="corpus data dir for gender means (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", required=True, help="output directory")
  args = parser.parse_args(argv)
  if not args.seconds > 0 or not args.temperature > 0:
    raise InputError(f"--seconds and --temperature must be positive, got {args.seconds} and {args.temperature}")
  if args.crop < 1 or args.batch_size < 1:
    raise InputError(f"--crop and --batch-size must be positive, got {args.crop} and {args.batch_size}")
  num_samples = int(round(args.seconds * audio.SAMPLE_RATE))
  if num_samples < 1:
    raise InputError(f"--seconds {args.seconds} is less than one sample; ask for more")
  model, params, labels = audio.load_vlae(args.checkpoint)
  name_a, z_a = endpoint(model, params, labels, args.a, args.from_gender, args, "--from-gender")
  name_b, z_b = endpoint(model, params, labels, args.b, args.to_gender, args, "--to-gender")
  if z_a.shape != z_b.shape:
    raise InputError(f"the endpoints have latents of different sizes ({z_a.shape[0]} vs {z_b.shape[0]}: local "
                     "latent sequences of different lengths); pass clips of at least --crop samples each")
  path = audio.interpolation_path(z_a, z_b, args.steps, args.mode)
  make_output_dir(args.out)

  clips = audio.decode(model, params, path, num_samples, jax.random.key(args.seed), args.temperature)
  f0 = []
  titles = []
  for step, clip in enumerate(clips):
    title = f"step {step}/{args.steps - 1}: {name_a} -> {name_b} ({args.mode})"
    dsp.save_audio(os.path.join(args.out, f"step_{step:02d}.wav"), clip, audio.SAMPLE_RATE)
    dsp.save_spectrogram_png(os.path.join(args.out, f"step_{step:02d}.png"), clip, audio.SAMPLE_RATE, title)
    f0.append(dsp.median_f0(clip, audio.SAMPLE_RATE))
    titles.append(title)
  dsp.save_spectrograms_png(os.path.join(args.out, "path.png"), list(zip(titles, clips)), audio.SAMPLE_RATE)
  correlation = spearman(np.array(f0))
  write_json(os.path.join(args.out, "path.json"), {
      "a": name_a, "b": name_b, "mode": args.mode, "seed": args.seed, "checkpoint": args.checkpoint,
      "latents": path.tolist(), "median_f0_hz": [None if np.isnan(value) else value for value in f0],
      "spearman_f0_vs_step": None if np.isnan(correlation) else correlation})
  print(f"{'step':>4} {'fraction':>8} {'median F0 (Hz)':>14}")
  for step, value in enumerate(f0):
    print(f"{step:>4} {step / (args.steps - 1):>8.3f} {'-' if np.isnan(value) else f'{value:.1f}':>14}")
  print(f"Spearman(F0, step) = {'-' if np.isnan(correlation) else f'{correlation:.3f}'}; wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
