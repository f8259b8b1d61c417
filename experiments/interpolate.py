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
import os

import jax
import numpy as np
import scipy.stats

import dsp
from dsp.errors import InputError
from experiments import cli
from vlae import audio
from vlae.train_audio import gender_means


def check_gender(labels, gender, flag):
  """Raises InputError unless `gender` is one of the checkpoint's gender labels."""
  known = labels.get("gender", ())
  if gender not in known:
    raise InputError(f"{flag} {gender}: unknown gender; known: {', '.join(known) or 'none'} (the checkpoint's labels)")


def endpoint(model, params, clip_path, gender, means, crop, flag):
  """(name, z [latent_features + F * local]) of one end of the path.

  Args:
    model, params: the audio VLAE.
    clip_path: audio file whose central `crop` samples are encoded (posterior mean), or None.
    gender: with no clip, the gender whose entry of `means` is the endpoint.
    means: {gender: z} of `gender_means` (computed once for both endpoints).
    crop: samples encoded from the clip.
    flag: the flag that named the gender, for errors.
  """
  if clip_path:
    clip = audio.central_crop(dsp.load_audio(clip_path, audio.SAMPLE_RATE), crop)
    audio.check_clip(clip, model, clip_path)
    return os.path.basename(clip_path), np.asarray(audio.encode(model, params, clip[None]).mean[0])
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
  start.add_argument("--from-gender", help="start at this gender's mean posterior (a gender name from the "
                     "checkpoint's labels; an unknown one gets the list)")
  end = parser.add_mutually_exclusive_group(required=True)
  end.add_argument("--b", help="audio file at the end of the path")
  end.add_argument("--to-gender", help="end at this gender's mean posterior (a gender name from the checkpoint's "
                   "labels)")
  parser.add_argument("--steps", type=int, default=7, help="points on the path, endpoints included (default 7)")
  parser.add_argument("--mode", choices=["slerp", "lerp"], default="slerp", help="path shape (default slerp)")
  parser.add_argument("--seconds", type=cli.positive_float, default=0.5,
                      help="seconds decoded per step (default 0.5); with local latents at most the encoded "
                      "length (--crop, rounded up to whole local frames)")
  parser.add_argument("--crop", type=int, default=8000, help="central samples of each clip encoded (default 8000)")
  parser.add_argument("--temperature", type=cli.positive_float, default=1.0,
                      help="softmax temperature, > 0 (default 1)")
  parser.add_argument("--seed", type=int, default=0, help="PRNG seed, shared by every step (default 0)")
  parser.add_argument("--checkpoint", default=audio.DEFAULT_CHECKPOINT, help=audio.DEFAULT_CHECKPOINT_HELP)
  parser.add_argument("--batch-size", type=int, default=8, help="crops per encoder pass for gender means")
  parser.add_argument("--data-dir", help="corpus data dir for gender means (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", required=True, help="output directory")
  args = parser.parse_args(argv)
  if args.batch_size < 1:
    raise InputError(f"--batch-size must be positive, got {args.batch_size}")
  num_samples = cli.seconds_to_samples(args.seconds, audio.SAMPLE_RATE)
  model, params, labels = audio.load_vlae(args.checkpoint)
  audio.check_crop(model, args.crop)
  for gender, flag in ((args.from_gender, "--from-gender"), (args.to_gender, "--to-gender")):
    if gender is not None:
      check_gender(labels, gender, flag)
  means = {}
  if args.from_gender or args.to_gender:
    means = gender_means(model, params, labels, args.crop, args.batch_size, args.data_dir)
  name_a, z_a = endpoint(model, params, args.a, args.from_gender, means, args.crop, "--from-gender")
  name_b, z_b = endpoint(model, params, args.b, args.to_gender, means, args.crop, "--to-gender")
  if z_a.shape != z_b.shape:
    raise InputError(f"the endpoints have latents of different sizes ({z_a.shape[0]} vs {z_b.shape[0]}: local "
                     "latent sequences of different lengths); pass clips of at least --crop samples each")
  path = audio.interpolation_path(z_a, z_b, args.steps, args.mode)
  audio.check_decode_length(model, path, num_samples)
  cli.make_output_dir(args.out)

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
  dsp.save_json(os.path.join(args.out, "path.json"), {
      "a": name_a, "b": name_b, "mode": args.mode, "seed": args.seed, "checkpoint": args.checkpoint,
      "latents": path.tolist(), "median_f0_hz": [None if np.isnan(value) else value for value in f0],
      "spearman_f0_vs_step": None if np.isnan(correlation) else correlation})
  print(f"{'step':>4} {'fraction':>8} {'median F0 (Hz)':>14}")
  for step, value in enumerate(f0):
    print(f"{step:>4} {step / (args.steps - 1):>8.3f} {'-' if np.isnan(value) else f'{value:.1f}':>14}")
  print(f"Spearman(F0, step) = {'-' if np.isnan(correlation) else f'{correlation:.3f}'}; wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
