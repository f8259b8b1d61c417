"""Spectrogram Gram-matrix style transfer of one content clip and one style clip.

  python -m experiments.spectrogram_style --content C.wav --style S.wav --out OUT.wav

Writes, all at once at the end: OUT.wav, OUT.png (its spectrogram),
OUT_spectrograms.png (content, style and result stacked), OUT_losses.png
(loss curves) and OUT.json (final losses, timings, settings). The defaults are
Ulyanov's recipe: 4,096-filter random conv, L-BFGS 300 steps, Griffin-Lim 500.
"""

import argparse
import dataclasses
import os
import tempfile

import numpy as np
import soundfile as sf

import dsp
from common import cli, figures
from common.errors import InputError
from common.files import save_json
from styletransfer import spectrogram

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
DEFAULTS = spectrogram.StyleTransferConfig()


def parse_args(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.spectrogram_style", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--content", required=True, help="content clip (WAV/FLAC/OGG)")
  parser.add_argument("--style", required=True, help="style clip (WAV/FLAC/OGG)")
  parser.add_argument("--out", required=True, help="output audio path (.wav, .flac or .ogg)")
  parser.add_argument("--features", choices=spectrogram.FEATURES, default=DEFAULTS.features)
  parser.add_argument("--optimizer", choices=spectrogram.OPTIMIZERS, default=DEFAULTS.optimizer)
  parser.add_argument("--iterations", type=int, default=DEFAULTS.iterations, help="optimiser steps")
  parser.add_argument("--content-weight", type=cli.non_negative_float, default=DEFAULTS.content_weight)
  parser.add_argument("--style-weight", type=cli.non_negative_float, default=DEFAULTS.style_weight)
  parser.add_argument("--learning-rate", type=cli.positive_float, default=DEFAULTS.learning_rate, help="Adam step size")
  parser.add_argument("--griffin-lim-iterations", type=int, default=DEFAULTS.griffin_lim_iterations)
  parser.add_argument("--phase", choices=spectrogram.PHASES, default=DEFAULTS.phase)
  parser.add_argument("--init", choices=spectrogram.INITS, default=DEFAULTS.init)
  parser.add_argument("--filters", type=int, default=DEFAULTS.n_filters, help="random_conv channels")
  parser.add_argument("--filter-width", type=int, default=DEFAULTS.filter_width, help="random_conv width (frames)")
  parser.add_argument("--n-fft", type=int, default=DEFAULTS.n_fft, help="STFT frame length (samples)")
  parser.add_argument("--hop", type=int, default=DEFAULTS.hop, help="STFT hop (samples)")
  parser.add_argument("--sample-rate", type=int, default=22050, help="Hz; both clips are resampled to it")
  parser.add_argument("--seed", type=cli.seed, default=DEFAULTS.seed)
  return parser.parse_args(argv)


def output_paths(out):
  """OUT.wav -> the five output paths, keyed by kind."""
  stem = os.path.splitext(out)[0]
  return {"audio": out, "spectrogram": stem + ".png", "spectrograms": stem + "_spectrograms.png",
          "losses": stem + "_losses.png", "report": stem + ".json"}


def load_clip(path, sample_rate, config):
  """Loads `path` at `sample_rate` and checks it; says so when it was resampled."""
  audio = dsp.load_audio(path, sample_rate)
  native_rate = sf.info(path).samplerate
  if native_rate != sample_rate:
    print(f"{path}: resampled from {native_rate} Hz to {sample_rate} Hz")
  spectrogram.validate_clip(audio, config, path)
  return audio


def save_loss_curves_png(path, trace, config):
  """Plots total and weighted content/style losses against the step (log y)."""
  figure, axis = figures.pyplot().subplots(figsize=(8, 4))
  steps = np.arange(1, len(trace.total) + 1)
  curves = [("total", trace.total),
            (f"content x {config.content_weight:g}", config.content_weight * trace.content),
            (f"style x {config.style_weight:g}", config.style_weight * trace.style)]
  for label, values in curves:
    recorded = np.isfinite(values) & (values > 0)
    axis.semilogy(steps[recorded], values[recorded], "-" if recorded.all() else ".-", label=label)
  axis.set_xlabel(f"{config.optimizer} step")
  axis.set_ylabel("loss")
  axis.set_title(f"{config.features} features, {config.optimizer}")
  axis.grid(True, which="both", alpha=0.3)
  axis.legend()
  figures.save_figure(figure, path)


def main(argv):
  args = parse_args(argv)
  config = spectrogram.StyleTransferConfig(
      n_fft=args.n_fft, hop=args.hop, features=args.features, n_filters=args.filters,
      filter_width=args.filter_width, content_weight=args.content_weight,
      style_weight=args.style_weight, init=args.init, optimizer=args.optimizer,
      iterations=args.iterations, learning_rate=args.learning_rate,
      phase=args.phase, griffin_lim_iterations=args.griffin_lim_iterations, seed=args.seed)
  if args.sample_rate <= 0:
    raise InputError(f"--sample-rate {args.sample_rate}: give a positive rate in Hz")
  cli.check_output_file(args.out, AUDIO_EXTENSIONS)
  content = load_clip(args.content, args.sample_rate, config)
  style = load_clip(args.style, args.sample_rate, config)

  result = spectrogram.transfer(content, style, config, progress=True)

  paths = output_paths(args.out)
  directory = os.path.dirname(os.path.abspath(args.out))
  with tempfile.TemporaryDirectory(dir=directory, prefix=".tmp-") as staging:
    staged = {kind: os.path.join(staging, os.path.basename(path)) for kind, path in paths.items()}
    dsp.save_audio(staged["audio"], result.audio, args.sample_rate)
    dsp.save_spectrogram_png(staged["spectrogram"], result.audio, args.sample_rate, title="result")
    dsp.save_spectrograms_png(staged["spectrograms"], [("content", content), ("style", style),
                                                       ("result", result.audio)], args.sample_rate)
    save_loss_curves_png(staged["losses"], result.trace, config)
    save_json(staged["report"], {
        "content": args.content, "style": args.style, "sample_rate": args.sample_rate,
        "config": dataclasses.asdict(config), "losses": result.losses, "timings": result.timings,
        "outputs": paths})
    for kind, path in paths.items():
      os.replace(staged[kind], path)

  timings = result.timings
  print(f"wrote {', '.join(paths.values())}")
  print(f"loss {result.losses['total']:.4g} (content {result.losses['content']:.4g}, "
        f"style {result.losses['style']:.4g}); features {timings['feature_extraction']:.2f} s, "
        f"optimisation {timings['optimisation']:.1f} s ({timings['evaluations']} evaluations, "
        f"{timings['ms_per_evaluation']:.0f} ms each), phase {timings['phase']:.2f} s, "
        f"compile {timings['compile']:.1f} s, total {timings['total']:.1f} s")


if __name__ == "__main__":
  cli.run(main)
