"""Sample audio from an audio VLAE with z drawn from its prior.

examples:
  python -m experiments.sample_vlae --num 4 --seconds 0.5 --out out/vlae_prior
  python -m experiments.sample_vlae --checkpoint runs/vlae_medium_fb --temperature 0.9 --out out/medium

Draws z ~ p(z) (N(0, I) or the learned flow), decodes each with the
incremental WaveNet sampler (one PRNG key for all, so samples differ only
through z), writes sample_NN.wav with a spectrogram sample_NN.png beside each,
and prints each file's median F0 (pYIN).
"""

import argparse
import os

import jax
import numpy as np

import dsp
from dsp.errors import InputError
from experiments import cli
from vlae import audio


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.sample_vlae", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num", type=int, default=4, help="samples to draw (default 4)")
  parser.add_argument("--seconds", type=cli.positive_float, default=0.5,
                      help="length of each sample in seconds (default 0.5)")
  parser.add_argument("--temperature", type=cli.positive_float, default=1.0,
                      help="softmax temperature, > 0 (default 1)")
  parser.add_argument("--seed", type=int, default=0, help="PRNG seed; the same seed gives the same audio")
  parser.add_argument("--checkpoint", default=audio.DEFAULT_CHECKPOINT, help=audio.DEFAULT_CHECKPOINT_HELP)
  parser.add_argument("--out", default="out/vlae_prior", help="output directory (default out/vlae_prior)")
  args = parser.parse_args(argv)
  if args.num < 1:
    raise InputError(f"--num must be at least 1, got {args.num}")
  num_samples = cli.seconds_to_samples(args.seconds, audio.SAMPLE_RATE)
  model, params, _ = audio.load_vlae(args.checkpoint)
  cli.make_output_dir(args.out)
  prior_key, sample_key = jax.random.split(jax.random.key(args.seed))
  z = audio.prior_draws(model, params, prior_key, args.num, num_samples)
  clips = audio.decode(model, params, z, num_samples, sample_key, args.temperature)
  paths = [os.path.join(args.out, f"sample_{index:02d}.wav") for index in range(args.num)]
  width = max(len(path) for path in paths + ["file"])
  print(f"{'file':<{width}} {'median F0 (Hz)':>14}")
  for index, (path, clip) in enumerate(zip(paths, clips)):
    dsp.save_audio(path, clip, audio.SAMPLE_RATE)
    dsp.save_spectrogram_png(os.path.join(args.out, f"sample_{index:02d}.png"), clip, audio.SAMPLE_RATE,
                             f"sample {index}: z from the prior")
    f0 = dsp.median_f0(clip, audio.SAMPLE_RATE)
    print(f"{path:<{width}} {'-' if np.isnan(f0) else f'{f0:.1f}':>14}")


if __name__ == "__main__":
  cli.run(main)
