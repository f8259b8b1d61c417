"""Sample audio from a VLAE with z drawn from its prior.

examples:
  python -m experiments.sample_vlae --num 4 --out out/vlae_prior
  python -m experiments.sample_vlae --checkpoint runs/vlae_medium_fb --seconds 0.5 --out out/medium

Two kinds of VLAE, told apart by the checkpoint. The frame-rate VLAE (the
default, models/frame_vlae) draws z ~ N(0, I), decodes frames as 1.2 s
phrases with 0.15 s pauses and renders them with the vocoder (--vocoder,
default models/vocoder). The sample-level audio VLAE draws z from its prior
(N(0, I) or its learned flow) and decodes with its WaveNet. One PRNG key
serves every sample, so samples differ only through z. Writes sample_NN.wav
with a spectrogram sample_NN.png beside each, and prints each file's median
F0 and voiced share (pYIN).
"""

import argparse
import os

import jax
import numpy as np

import dsp
from common import cli
from common.errors import InputError
from corpora.schema import SAMPLE_RATE
from experiments import interpolate
from training.checkpoint import load_model_config
from vlae import audio_inference, frame_inference
from vocoder import synthesis


def frame_vlae_route(args):
  """Loads the frame-rate VLAE and the vocoder; returns `num_samples -> [num, num_samples] audio`, z ~ N(0, I)."""
  model, params, _ = frame_inference.load_frame_vlae(args.checkpoint)
  vocoder, vocoder_params, _ = synthesis.load_vocoder(args.vocoder)
  return lambda num_samples: _frame_vlae_draws(args, num_samples, model, params, vocoder, vocoder_params)


def _frame_vlae_draws(args, num_samples, model, params, vocoder, vocoder_params):
  prior_key, frames_key, vocoder_key = jax.random.split(jax.random.key(args.seed), 3)
  z = np.asarray(jax.random.normal(prior_key, (args.num, model.latent_channels)))
  num_frames = -(-num_samples // (SAMPLE_RATE // 100))
  temperature = 0.7 if args.temperature is None else args.temperature
  features = frame_inference.decode_to_features(model, params, z, num_frames, frames_key, temperature,
                                           interpolate.PHRASE_FRAMES, interpolate.PAUSE_FRAMES)
  return synthesis.vocode(vocoder, vocoder_params, features, num_samples, vocoder_key, SAMPLE_RATE)


def audio_vlae_route(args):
  """Loads the sample-level audio VLAE; returns `num_samples -> [num, num_samples] audio`, z from its prior."""
  model, params, _ = audio_inference.load_vlae(args.checkpoint)

  def draw(num_samples):
    prior_key, sample_key = jax.random.split(jax.random.key(args.seed))
    z = audio_inference.prior_draws(model, params, prior_key, args.num, num_samples)
    return audio_inference.decode(model, params, z, num_samples, sample_key, 1.0 if args.temperature is None else args.temperature)
  return draw


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.sample_vlae", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num", type=int, default=4, help="samples to draw, 1 to 64 (default 4)")
  parser.add_argument("--seconds", type=cli.positive_float, default=None,
                      help="length of each sample in seconds (default: 2.7 for the frame-rate VLAE, 0.5 for the "
                      "sample-level one)")
  parser.add_argument("--temperature", type=cli.positive_float, default=None,
                      help="> 0; the frame decoder's Gaussian spread (default 0.7) or the WaveNet's softmax "
                      "temperature (default 1)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed; the same seed gives the same audio")
  parser.add_argument("--checkpoint", default=interpolate.SHIPPED_FRAME_VLAE,
                      help="a frame-rate VLAE (default: the shipped models/frame_vlae) or an audio VLAE: a training "
                      "workdir, its checkpoints folder or one step's folder")
  parser.add_argument("--vocoder", default=synthesis.SHIPPED_CHECKPOINT,
                      help="frame-rate VLAE: the vocoder that renders the frames (default models/vocoder)")
  parser.add_argument("--out", default="out/vlae_prior", help="output directory (default out/vlae_prior)")
  args = parser.parse_args(argv)
  if not 1 <= args.num <= 64:
    raise InputError(f"--num must be 1 to 64, got {args.num}")
  if args.seconds is not None and args.seconds > 30:
    raise InputError(f"--seconds {args.seconds:g}: give at most 30")
  frame_route = load_model_config(args.checkpoint)[0].get("architecture") == "frame_vlae"
  seconds = args.seconds if args.seconds is not None else (2.7 if frame_route else 0.5)
  num_samples = cli.seconds_to_samples(seconds, SAMPLE_RATE)
  draw = (frame_vlae_route if frame_route else audio_vlae_route)(args)
  clips = draw(num_samples)
  paths = [os.path.join(args.out, f"sample_{index:02d}.wav") for index in range(args.num)]
  width = max(len(path) for path in paths + ["file"])
  print(f"{'file':<{width}} {'median F0 (Hz)':>14} {'voiced %':>8}")
  with cli.output_dir(args.out) as staging:
    for index, (path, clip) in enumerate(zip(paths, clips)):
      dsp.save_audio(os.path.join(staging, os.path.basename(path)), clip, SAMPLE_RATE)
      dsp.save_spectrogram_png(os.path.join(staging, f"sample_{index:02d}.png"), clip, SAMPLE_RATE,
                               f"sample {index}: z from the prior")
      f0, voiced = dsp.track_summary(dsp.f0_track(clip, SAMPLE_RATE))
      print(f"{path:<{width}} {'-' if np.isnan(f0) else f'{f0:.1f}':>14} {100 * voiced:>8.0f}")


if __name__ == "__main__":
  cli.run(main)
