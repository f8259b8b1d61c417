"""F0 trackers on synthetic voices: speed and agreement with pYIN, the project's reference tracker.

    python -m benchmarks.bench_f0_trackers [--voices en-us+m3 en-us+f3 flite:rms] [--seconds 5]

Each voice reads one sentence (espeak-ng, or flite for `flite:NAME`),
resampled to 16 kHz. Prints one table: per tracker and voice, the seconds it
took, the voicing disagreement with pYIN and the gross pitch error (> 20% off)
on frames both call voiced. Praat is what `dsp.frames` uses.
"""

import argparse
import os
import subprocess
import tempfile
import time

import librosa
import numpy as np
import pyworld

import dsp
from common import cli
from common.errors import InputError
from dsp import frames

SAMPLE_RATE = 16000
SENTENCE = ("The quick brown fox jumps over the lazy dog while the sun sets slowly behind the hills, "
            "and nobody in the village hears it.")


def speak(voice, directory):
  """[n] float32 audio at 16 kHz of SENTENCE in `voice` (an espeak-ng voice or flite:NAME)."""
  path = os.path.join(directory, "voice.wav")
  command = (["flite", "-voice", voice.split(":", 1)[1], "-t", SENTENCE, "-o", path] if voice.startswith("flite:")
             else ["espeak-ng", "-v", voice, "-w", path, SENTENCE])
  try:
    subprocess.run(command, check=True, capture_output=True)
  except (OSError, subprocess.CalledProcessError) as error:
    raise InputError(f"voice {voice}: {command[0]} failed ({error}); install.sh installs the engines") from None
  return dsp.load_audio(path, SAMPLE_RATE)


def trackers(audio):
  """{name: (seconds, [F] F0 in Hz at the frame centres, 0 unvoiced)} of every tracker."""
  hop = frames.hop_length(SAMPLE_RATE)
  count = frames.num_frames(len(audio), SAMPLE_RATE)
  centres = (np.arange(count) + 0.5) * hop / SAMPLE_RATE
  x = np.asarray(audio, np.float64)
  out = {}
  tic = time.perf_counter()
  f0, voiced, _ = librosa.pyin(audio, fmin=frames.F0_FLOOR_HZ, fmax=frames.F0_CEILING_HZ, sr=SAMPLE_RATE,
                               frame_length=1024, hop_length=hop, center=True)
  pyin_times = np.arange(len(f0)) * hop / SAMPLE_RATE
  out["pYIN"] = (time.perf_counter() - tic, np.interp(centres, pyin_times, np.where(voiced, f0, 0.0)))
  tic = time.perf_counter()
  praat = frames.track_f0(audio, SAMPLE_RATE)
  out["Praat"] = (time.perf_counter() - tic, praat)
  for name in ("DIO", "Harvest"):
    tic = time.perf_counter()
    if name == "DIO":
      f0, times = pyworld.dio(x, SAMPLE_RATE, f0_floor=frames.F0_FLOOR_HZ, f0_ceil=frames.F0_CEILING_HZ,
                              frame_period=1000 * hop / SAMPLE_RATE)
      f0 = pyworld.stonemask(x, f0, times, SAMPLE_RATE)
    else:
      f0, times = pyworld.harvest(x, SAMPLE_RATE, f0_floor=frames.F0_FLOOR_HZ, f0_ceil=frames.F0_CEILING_HZ,
                                  frame_period=1000 * hop / SAMPLE_RATE)
    nearest = np.clip(np.round(centres / (hop / SAMPLE_RATE)).astype(int), 0, len(f0) - 1)
    out[name] = (time.perf_counter() - tic, f0[nearest])
  return out


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_f0_trackers", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--voices", nargs="+", default=["en-us+m3", "en-us+f3", "flite:rms"],
                      help="espeak-ng voices, or flite:NAME")
  parser.add_argument("--seconds", type=cli.positive_float, default=5.0, help="seconds of each reading kept")
  args = parser.parse_args(argv)
  print(f"{'voice':<10} | {'tracker':<8} | {'seconds':>7} | {'V/UV vs pYIN':>12} | {'GPE vs pYIN':>11}")
  with tempfile.TemporaryDirectory() as directory:
    for voice in args.voices:
      audio = speak(voice, directory)[:int(args.seconds * SAMPLE_RATE)]
      results = trackers(audio)
      reference = results["pYIN"][1]
      for name, (seconds, f0) in results.items():
        both = (f0 > 0) & (reference > 0)
        vuv = 100 * np.mean((f0 > 0) != (reference > 0))
        gpe = 100 * np.mean(np.abs(f0[both] / reference[both] - 1) > 0.2) if both.any() else float("nan")
        print(f"{voice:<10} | {name:<8} | {seconds:7.2f} | {vuv:11.1f}% | {gpe:10.1f}%")


if __name__ == "__main__":
  cli.run(main)
