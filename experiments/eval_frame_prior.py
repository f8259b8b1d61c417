"""The frame prior against the data: validation NLL, and sampled F0 and voicing per gender beside the corpus's.

examples:
  python -m experiments.eval_frame_prior --out out/eval_frame_prior
  python -m experiments.eval_frame_prior --checkpoint runs/frame_prior --num 20 --seconds 4 --temperature 0.7

Draws --num streams of --seconds per gender (speaker absent), straight from
the prior (no vocoder), and compares the F0 of their voiced frames and their
voiced share with those of the validation split (Praat F0 of the
recordings). Prints a table and writes f0_by_gender.png and eval.json.
"""

import argparse
import functools
import os
import types

import jax
import jax.numpy as jnp
import numpy as np

from common import cli, figures
from common.errors import InputError
from common.files import save_json
from corpora.schema import GENDERS
from experiments.sample_garble import load_frame_prior, SHIPPED_PRIOR
from frameprior import model as prior_lib
from frameprior.train import frame_windows, load_frames, make_loss_fn
from vocoder import features as features_lib


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_frame_prior", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", default=SHIPPED_PRIOR, help="frame prior workdir or checkpoint folder "
                      "(default: the shipped models/frame_prior)")
  parser.add_argument("--num", type=int, default=20, help="sampled streams per gender (default 20)")
  parser.add_argument("--seconds", type=cli.positive_float, default=4.0, help="seconds per stream (default 4)")
  parser.add_argument("--temperature", type=cli.positive_float, default=0.7, help="prior temperature (default 0.7)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed")
  parser.add_argument("--corpus-config", default="full", help="voices config (default full)")
  parser.add_argument("--data-dir", help="TFDS data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", default="out/eval_frame_prior", help="output directory")
  args = parser.parse_args(argv)
  if not 1 <= args.num <= 256 or args.seconds > 60:
    raise InputError("give --num 1 to 256 and --seconds up to 60")
  model, params, _ = load_frame_prior(args.checkpoint)
  data = types.SimpleNamespace(name="voices", config=args.corpus_config, data_dir=args.data_dir)
  clips, split_frames, vectors = load_frames(data, "validation")
  loss_fn = jax.jit(functools.partial(make_loss_fn(model, 0.0), step=0, train=False))
  rng = np.random.default_rng(args.seed)
  nats = [float(loss_fn(params, frame_windows(vectors, split_frames.starts, split_frames.counts, clips.speaker,
                                               clips.gender, rng, 16, 200), jax.random.key(0))[0]) for _ in range(10)]
  num_frames = int(args.seconds * 100)
  rows, hist = {}, {}
  for gender_id, gender in enumerate(GENDERS):
    sampled = np.asarray(jax.jit(prior_lib.sample, static_argnums=(0, 3))(
        model, params, jax.random.key(args.seed + gender_id), num_frames, jnp.full((args.num,), -1, jnp.int32),
        jnp.full((args.num,), gender_id, jnp.int32), args.temperature))
    sampled_voiced = sampled[..., 1] > 0.5
    sampled_f0 = np.exp(sampled[..., 0] * features_lib.LOG_F0_SCALE + features_lib.LOG_F0_CENTRE)
    of_gender = np.repeat(clips.gender == gender_id, split_frames.counts)
    data_voiced = split_frames.features.voiced[of_gender] > 0
    data_f0 = np.exp(split_frames.features.log_f0[of_gender])
    per_stream = [float(np.median(f[v])) if v.any() else float("nan") for f, v in zip(sampled_f0, sampled_voiced)]
    rows[gender] = {"data_median_f0": float(np.median(data_f0[data_voiced])),
                    "sampled_median_f0": float(np.median(sampled_f0[sampled_voiced])),
                    "sampled_stream_median_f0_min": float(np.nanmin(per_stream)),
                    "sampled_stream_median_f0_max": float(np.nanmax(per_stream)),
                    "data_voiced_pct": 100 * float(data_voiced.mean()),
                    "sampled_voiced_pct": 100 * float(sampled_voiced.mean())}
    hist[gender] = (data_f0[data_voiced], sampled_f0[sampled_voiced])
  with cli.output_dir(args.out) as staging:
    figure, axes = figures.pyplot().subplots(1, 2, figsize=(10, 3.5))
    bins = np.geomspace(50, 400, 60)
    for axis, (gender, (data, sampled)) in zip(axes, hist.items()):
      axis.hist(data, bins, density=True, alpha=0.5, label="validation data")
      axis.hist(sampled, bins, density=True, alpha=0.5, label=f"prior, T={args.temperature:g}")
      axis.set_xscale("log")
      axis.set_xticks([60, 100, 150, 200, 300, 400], ["60", "100", "150", "200", "300", "400"])
      axis.minorticks_off()
      axis.set_title(f"{gender}: F0 of voiced frames")
      axis.set_xlabel("Hz")
      axis.legend()
    figures.save_figure(figure, os.path.join(staging, "f0_by_gender.png"))
    result = {"validation_bits_per_frame": float(np.mean(nats) / np.log(2)), "by_gender": rows,
              "checkpoint": os.path.abspath(args.checkpoint), "num": args.num, "seconds": args.seconds,
              "temperature": args.temperature}
    save_json(os.path.join(staging, "eval.json"), result)
    print(f"validation: {result['validation_bits_per_frame']:.2f} bits per frame (10 batches of 16 x 2 s)")
    print(f"{'gender':<8} {'data F0':>8} {'sampled F0':>10} {'stream medians':>16} {'data voiced %':>13} "
          f"{'sampled voiced %':>16}")
    for gender, row in rows.items():
      print(f"{gender:<8} {row['data_median_f0']:>8.1f} {row['sampled_median_f0']:>10.1f} "
            f"{row['sampled_stream_median_f0_min']:>7.1f}-{row['sampled_stream_median_f0_max']:<8.1f} "
            f"{row['data_voiced_pct']:>13.0f} {row['sampled_voiced_pct']:>16.0f}")
    print(f"wrote {args.out}/f0_by_gender.png and eval.json")


if __name__ == "__main__":
  cli.run(main)
