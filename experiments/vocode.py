"""Copy synthesis: any recording analysed into frame features and rendered by the vocoder.

examples:
  python -m experiments.vocode --input speech.wav --out out/vocoded.wav
  python -m experiments.vocode --input speech.wav --pitch-shift 12 --out out/octave_up.wav
  python -m experiments.vocode --input speech.flac --f0-scale 0.8 --checkpoint runs/vocoder --out out/low.wav

Any sample rate (resampled to 16 kHz) and channel count (averaged); at least
0.25 s with some voiced speech. Writes the WAV and a spectrogram PNG beside
it, and prints the median F0 and voiced share (pYIN) of the input and the
output. The checkpoint defaults to the vocoder shipped in models/vocoder.
"""

import argparse
import os
import time

import jax
import numpy as np

import dsp
from common import cli
from common.errors import InputError
from corpora.schema import SAMPLE_RATE
from vocoder import synthesis


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.vocode", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--input", required=True, help="the recording to resynthesise (WAV, FLAC or OGG)")
  parser.add_argument("--out", required=True, help="output WAV path; a PNG of its spectrogram is written beside it")
  shift = parser.add_mutually_exclusive_group()
  shift.add_argument("--pitch-shift", type=cli.finite_float, default=0.0, help="shift F0 by this many semitones")
  shift.add_argument("--f0-scale", type=cli.positive_float, default=1.0, help="multiply F0 by this factor")
  parser.add_argument("--temperature", type=cli.positive_float, default=1.0,
                      help="softmax temperature of an autoregressive vocoder (default 1)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed; the same seed gives the same audio")
  parser.add_argument("--checkpoint", default=synthesis.SHIPPED_CHECKPOINT,
                      help="vocoder training workdir or checkpoint folder (default: the shipped models/vocoder)")
  args = parser.parse_args(argv)
  if abs(args.pitch_shift) > 24:
    raise InputError(f"--pitch-shift {args.pitch_shift:g}: give at most 24 semitones either way")
  if not 0.25 <= args.f0_scale <= 4.0:
    raise InputError(f"--f0-scale {args.f0_scale:g}: give a factor between 0.25 and 4")
  cli.check_output_file(args.out, (".wav",))
  model, params, _ = synthesis.load_vocoder(args.checkpoint)
  audio, features = synthesis.analyse_recording(args.input, SAMPLE_RATE)
  features = synthesis.shift_pitch(features, args.pitch_shift, args.f0_scale)
  tic = time.perf_counter()
  output = synthesis.vocode(model, params, [features], len(audio), jax.random.key(args.seed), SAMPLE_RATE,
                            temperature=args.temperature)[0]
  print(f"vocoded {len(audio) / SAMPLE_RATE:.2f} s in {time.perf_counter() - tic:.1f} s (compilation included)")
  png = os.path.splitext(args.out)[0] + ".png"
  dsp.save_audio(args.out, output, SAMPLE_RATE)
  dsp.save_spectrograms_png(png, [("input", audio), ("vocoded", output)], SAMPLE_RATE)
  print(f"{'':<8} {'median F0 (Hz)':>14} {'voiced %':>8}")
  for name, clip in (("input", audio), ("output", output)):
    f0, voiced = dsp.track_summary(dsp.f0_track(clip, SAMPLE_RATE))
    print(f"{name:<8} {'-' if np.isnan(f0) else f'{f0:.1f}':>14} {100 * voiced:>8.0f}")
  print(f"wrote {args.out} and {png}")

if __name__ == "__main__":
  cli.run(main)
