"""Times Ulyanov's spectrogram style-transfer recipe and Griffin-Lim on this machine.

  python -m benchmarks.bench_spectrogram_style [--seconds 10] [--iterations 300]

Content and style are synthetic 22.05 kHz clips (a gliding harmonic voice and
gated noise with a chord), so nothing is downloaded. Prints one table: the
stages of `styletransfer.spectrogram.transfer` (compilation apart), one
loss-and-gradient evaluation with the conv as an unfolded matmul against
`lax.conv_general_dilated`, and 500 Griffin-Lim iterations of
`dsp.griffin_lim` against `librosa.griffinlim` on the same magnitude.

Each stage shows wall-clock seconds and this process's CPU seconds (all
threads). On a machine shared with other jobs the wall clock includes time
they held the cores; CPU seconds / cores then roughly estimates the time on
an idle machine (CPU close to wall means the stage ran on about one core).
"""

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import librosa
import numpy as np

import dsp
from common import cli
from common.errors import InputError
from styletransfer import spectrogram

SAMPLE_RATE = 22050


def content_clip(seconds, sample_rate=SAMPLE_RATE):
  """[n] float32: a harmonic tone whose pitch glides like speech, syllable-gated."""
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  f0 = 140.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t) + 15.0 * np.sin(2 * np.pi * 3.1 * t)
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  voice = sum(np.sin(k * phase) / k for k in range(1, 16))
  syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0.0, None) ** 0.5
  return (0.2 * voice * syllables).astype(np.float32)


def style_clip(seconds, sample_rate=SAMPLE_RATE, seed=0):
  """[n] float32: gated white noise over a sustained A-minor chord."""
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.63, 329.63, 440.0)) / 4
  noise = np.random.default_rng(seed).standard_normal(t.shape) * ((t * 8) % 1 < 0.3)
  return (0.25 * chord + 0.1 * noise).astype(np.float32)


def timed(function, *args):
  """(result, wall seconds, process CPU seconds) of `function(*args)` run to completion."""
  wall, cpu = time.perf_counter(), time.process_time()
  result = jax.block_until_ready(function(*args))
  return result, time.perf_counter() - wall, time.process_time() - cpu


def best_seconds(function, *args, repeats=3):
  """(wall, CPU) seconds of the fastest of `repeats` runs of `function(*args)`, after a warm-up."""
  jax.block_until_ready(function(*args))
  return min(timed(function, *args)[1:] for _ in range(repeats))


def evaluation_seconds(content, style, config):
  """(wall, CPU) seconds of one loss-and-gradient evaluation per conv formulation."""
  kernel = jnp.asarray(spectrogram.random_conv_weights(config.seed, config.n_bins, config.n_filters,
                                                       config.filter_width))
  content_log = spectrogram.log_magnitude(jnp.asarray(content), config.n_fft, config.hop)
  style_log = spectrogram.log_magnitude(jnp.asarray(style), config.n_fft, config.hop)

  def conv_general(log_magnitude):
    response = jax.lax.conv_general_dilated(log_magnitude[None], kernel, (1,), "VALID",
                                            dimension_numbers=("NWC", "WIO", "NWC"))[0]
    return jax.nn.relu(response)

  def unfolded(log_magnitude):
    return spectrogram.conv_features(log_magnitude, kernel)

  results = {}
  for name, feature_map in (("unfolded matmul", unfolded), ("lax.conv_general_dilated", conv_general)):
    content_features = feature_map(content_log)
    target = spectrogram.style_target(feature_map(style_log))

    def objective(log_magnitude, feature_map=feature_map, content_features=content_features,
                  target=target):
      current = feature_map(log_magnitude)
      return (config.content_weight * spectrogram.content_loss(current, content_features)
              + config.style_weight * spectrogram.style_loss(current, target))

    results[name] = best_seconds(jax.jit(jax.value_and_grad(objective)), content_log)
  return results


def griffin_lim_seconds(audio, iterations, config):
  """dsp.griffin_lim vs librosa.griffinlim: {name: ((wall, CPU) seconds, spectral convergence)}."""
  magnitude = jnp.abs(dsp.stft(jnp.asarray(audio), config.n_fft, config.hop))
  key = jax.random.key(0)
  momentum = config.griffin_lim_momentum
  compiled = dsp.griffin_lim.lower(magnitude, key, n_fft=config.n_fft, hop=config.hop, length=len(audio),
                                   iterations=iterations, momentum=momentum).compile()
  rebuilt, *ours = timed(functools.partial(compiled, momentum=momentum), magnitude, key)
  reference, *theirs = timed(functools.partial(
      librosa.griffinlim, n_iter=iterations, hop_length=config.hop, n_fft=config.n_fft, momentum=momentum,
      length=len(audio), random_state=0), np.asarray(magnitude).T)

  def convergence(signal):
    return float(dsp.spectral_convergence(jnp.asarray(signal, jnp.float32), magnitude, config.n_fft,
                                          config.hop))

  return {"dsp.griffin_lim (JAX)": (ours, convergence(rebuilt)),
          "librosa.griffinlim": (theirs, convergence(reference))}


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_spectrogram_style", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=cli.positive_float, default=10.0, help="length of both clips")
  parser.add_argument("--iterations", type=int, default=300, help="L-BFGS iterations")
  parser.add_argument("--filters", type=int, default=4096, help="random conv channels")
  parser.add_argument("--griffin-lim-iterations", type=int, default=500)
  args = parser.parse_args(argv)
  for name in ("iterations", "filters", "griffin_lim_iterations"):
    if getattr(args, name) < 1:
      raise InputError(f"--{name.replace('_', '-')} must be at least 1")
  config = spectrogram.StyleTransferConfig(n_filters=args.filters, iterations=args.iterations,
                                           griffin_lim_iterations=args.griffin_lim_iterations)
  content, style = content_clip(args.seconds), style_clip(args.seconds)
  n_frames = 1 + len(content) // config.hop

  result = spectrogram.transfer(content, style, config, progress=True)
  timings = result.timings
  evaluations = evaluation_seconds(content, style, config)
  griffin_lim = griffin_lim_seconds(content, args.griffin_lim_iterations, config)

  flops = 2 * 2 * (n_frames - config.filter_width + 1) * config.filter_width * config.n_bins * config.n_filters
  rows = [
      ("feature extraction (weights, STFTs, targets)", timings["feature_extraction"],
       timings["feature_extraction_cpu"], ""),
      ("optimisation", timings["optimisation"], timings["optimisation_cpu"],
       f"{timings['evaluations']} evaluations, {timings['ms_per_evaluation']:.0f} ms each "
       f"({1e3 * timings['optimisation_cpu'] / timings['evaluations']:.0f} CPU ms)"),
      (f"Griffin-Lim {config.griffin_lim_iterations} it (in transfer)", timings["phase"], timings["phase_cpu"],
       ""),
      ("total (compilation included)", timings["total"], timings["total_cpu"],
       f"final loss {result.losses['total']:.4g}"),
      ("compilation (inside total)", timings["compile"], timings["compile_cpu"], ""),
  ]
  for name, (wall, cpu) in evaluations.items():
    rows.append((f"one evaluation, conv as {name}", wall, cpu,
                 f"conv fwd+bwd {flops / 1e9:.0f} GFLOP: {flops / wall / 1e9:.0f} GFLOP/s"))
  for name, ((wall, cpu), convergence) in griffin_lim.items():
    rows.append((f"Griffin-Lim {args.griffin_lim_iterations} it, {name}", wall, cpu,
                 f"spectral convergence {convergence:.4f}"))

  print(f"Ulyanov recipe: {args.seconds:g} s content + {args.seconds:g} s style at {SAMPLE_RATE} Hz, "
        f"{n_frames} frames x {config.n_bins} bins, {config.n_filters} filters of width "
        f"{config.filter_width}, L-BFGS {config.iterations}, Griffin-Lim {config.griffin_lim_iterations}; "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
  cells = [("stage", "wall s", "CPU s", "notes")]
  cells += [(name, f"{wall:.2f}", f"{cpu:.2f}", notes) for name, wall, cpu, notes in rows]
  widths = [max(len(row[column]) for row in cells) for column in range(4)]
  for row in cells:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
  cli.run(main)
