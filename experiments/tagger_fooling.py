"""Fooling a trained tagger: raise one tag's probability from starting clips by a small change of the waveform.

examples:
  python -m experiments.tagger_fooling --workdir runs/tagger_raw --tag organ --clips 5 --out out/fooling
  python -m experiments.tagger_fooling --workdir runs/tagger_raw --tag fast --input a.wav b.wav --out out/fool_ab

Starting clips are --input files, or else the first --clips clips of the
checkpoint corpus's test split whose probability of the tag is below 0.5. For
each clip K writes OUT/clipK_original.wav and OUT/clipK_fooled.wav, each with
a spectrogram PNG beside it, OUT/clipK.png (original, fooled and the change,
the change amplified to peak 0.9), and OUT/fooling.json: every tag's
probability before and after, the SNR of the change in dB and the spectral
flatness of the clip and of the change (about 0.56 for white noise).
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import corpora
import dsp
from common import cli
from common.errors import InputError
from common.files import save_json
from corpora import tagging
from styletransfer import tagger_style
from tagger.pretrained import load_tagger

FOOLED_PROBABILITY = 0.9  # a clip counts as fooled above this probability of the tag (and at --min-snr-db)


def starting_clips(args, model, params, names, corpus, tag):
  """[(label, [n] float32 audio)] from --input, or test clips where the tag's probability is below 0.5."""
  length = int(args.seconds * model.sample_rate)
  if args.input:
    loaded = [(os.path.basename(path), dsp.load_audio(path, model.sample_rate)[:length]) for path in args.input]
    for path, (_, audio) in zip(args.input, loaded):
      tagger_style.check_clip(audio, model, path)
    return loaded
  clips = tagging.preload(corpora.load_split(*corpus, "test", args.data_dir))
  chosen = []
  for index in range(len(clips)):
    audio = clips.clip(index)[:length]
    if float(tagger_style.probabilities(model, params, audio)[tag]) < 0.5:
      chosen.append((f"test clip {index} ({clips.piece[index]})", audio))
    if len(chosen) == args.clips:
      break
  if len(chosen) < args.clips:
    raise InputError(f"only {len(chosen)} test clips have {names[tag]!r} below 0.5; ask for fewer --clips")
  return chosen


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.tagger_fooling", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="tagger run directory or checkpoint folder")
  parser.add_argument("--tag", required=True, help="the tag to raise (one of the checkpoint's tags)")
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument("--input", nargs="+", help="starting clips (any WAV/FLAC/OGG); default: test-split clips")
  parser.add_argument("--clips", type=int, default=5, help="test clips to fool when no --input is given")
  parser.add_argument("--seconds", type=cli.positive_float, default=4.0, help="use at most this much of each clip")
  parser.add_argument("--steps", type=int, default=300, help="Adam steps on the waveform")
  parser.add_argument("--learning-rate", type=cli.positive_float, default=2e-4, help="Adam step size, in sample units")
  parser.add_argument("--leash", choices=tagger_style.LEASHES, default="l2", help="distance to the starting clip")
  parser.add_argument("--leash-weight", type=cli.non_negative_float, default=10.0, help="weight of the distance")
  parser.add_argument("--min-snr-db", type=cli.finite_float, default=20.0,
                      help="the change stays at least this far below the clip")
  parser.add_argument("--target-probability", type=float, default=0.95, help="stop pushing the logit past this")
  parser.add_argument("--data-dir", help=f"TFDS data dir (default: ${corpora.DATA_DIR_ENV} or {corpora.DEFAULT_DATA_DIR})")
  args = parser.parse_args(argv)
  if args.steps < 1 or args.clips < 1:
    raise InputError("--steps and --clips must be at least 1")
  if not 0.5 < args.target_probability < 1.0:
    raise InputError("--target-probability must lie between 0.5 and 1")
  model, params, names, corpus = load_tagger(args.workdir)
  tag = tagger_style.tag_index(names, args.tag)
  clips = starting_clips(args, model, params, names, corpus, tag)
  with cli.output_dir(args.out) as staging:
    results = []
    for number, (label, audio) in enumerate(clips):
      start = time.perf_counter()
      result = tagger_style.fool(model, params, jnp.asarray(audio), tag, steps=args.steps,
                                 learning_rate=args.learning_rate, leash=args.leash, leash_weight=args.leash_weight,
                                 min_snr_db=args.min_snr_db, target_probability=args.target_probability)
      fooled = np.asarray(jax.device_get(result.audio))
      seconds = time.perf_counter() - start
      before = np.asarray(tagger_style.probabilities(model, params, audio))
      after = np.asarray(tagger_style.probabilities(model, params, fooled))
      change = fooled - audio
      stem = os.path.join(staging, f"clip{number}")
      for suffix, signal in (("original", audio), ("fooled", fooled)):
        dsp.save_audio(f"{stem}_{suffix}.wav", signal, model.sample_rate)
        dsp.save_spectrogram_png(f"{stem}_{suffix}.png", signal, model.sample_rate, f"{label}: {suffix}")
      dsp.save_spectrograms_png(f"{stem}.png", [("original", audio), (f"fooled ({args.tag})", fooled),
                                                ("change, amplified", dsp.peak_normalize(change, 0.9))],
                                model.sample_rate)
      results.append({
          "clip": label, "tag": args.tag, "probability_before": float(before[tag]),
          "probability_after": float(after[tag]), "snr_db": tagger_style.snr_db(audio, fooled),
          "spectral_flatness_clip": tagger_style.spectral_flatness(audio),
          "spectral_flatness_change": tagger_style.spectral_flatness(change), "seconds": seconds,
          "probabilities_before": dict(zip(names, before.tolist())),
          "probabilities_after": dict(zip(names, after.tolist()))})
      row = results[-1]
      print(f"{label}: p({args.tag}) {row['probability_before']:.3f} -> {row['probability_after']:.3f}, "
            f"SNR {row['snr_db']:.1f} dB, flatness clip {row['spectral_flatness_clip']:.3f} "
            f"change {row['spectral_flatness_change']:.3f} ({seconds:.1f} s)")
    settings = {key: getattr(args, key) for key in ("tag", "steps", "learning_rate", "leash", "leash_weight",
                                                    "min_snr_db", "target_probability", "seconds")}
    save_json(os.path.join(staging, "fooling.json"),
                  {"checkpoint": os.path.abspath(args.workdir), "settings": settings, "clips": results})
    fooled_count = sum(row["probability_after"] > FOOLED_PROBABILITY and row["snr_db"] >= args.min_snr_db
                       for row in results)
    print(f"{fooled_count} of {len(results)} clips above {FOOLED_PROBABILITY} with an SNR of at least "
          f"{args.min_snr_db:g} dB; wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
