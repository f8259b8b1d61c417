"""Coordinate descent against joint relaxation on content/style pairs of the voices corpus.

    python -m experiments.wavenet_style_pairs --out out/style_pairs
    python -m experiments.wavenet_style_pairs --pairs 5 --seconds 1 --out out/style_pairs

Pair i takes its content from a male training speaker and its style from a
female one (speakers taken in turn, one utterance each from --split, leading
silence trimmed, the first --seconds kept). Both methods minimise the same
objective (the defaults of experiments.wavenet_style): coordinate descent
starts from the content clip's one-hot columns, the joint relaxation from
uniform logits; the table compares the total loss of their final one-hot
inputs (and of the content clip itself, "start"). Writes, per pair, pair_I/{content,style,coordinate,joint}.wav
with a spectrogram PNG beside each, and results.json with every number.
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
from styletransfer import wavenet_style as ws
from wavenet import pretrained

SAMPLE_RATE = corpora.schema.SAMPLE_RATE


def pick_pairs(records, speakers, genders, num_pairs, num_samples):
  """[(content_name, content_audio, style_name, style_audio)], male content and female style.

  Args:
    records: a voices split (dicts with audio [n] int16, speaker, gender).
    speakers: speaker names indexed by the records' speaker ints.
    genders: gender names indexed by the records' gender ints.
    num_pairs: pairs wanted.
    num_samples: samples kept of each clip (after trimming leading silence).
  """
  clips = {"male": {}, "female": {}}
  for record in records:
    gender = genders[int(record["gender"])]
    speaker = speakers[int(record["speaker"])]
    if gender not in clips or speaker in clips[gender]:
      continue
    audio = dsp.trim_silence(dsp.from_int16(np.asarray(record["audio"])))
    if len(audio) >= num_samples:
      clips[gender][speaker] = audio[:num_samples]
  males, females = sorted(clips["male"]), sorted(clips["female"])
  if not males or not females:
    raise InputError("the split has no male or no female utterance long enough; lower --seconds")
  return [(males[i % len(males)], clips["male"][males[i % len(males)]],
           females[i % len(females)], clips["female"][females[i % len(females)]]) for i in range(num_pairs)]


def save_clip(path, codes, model):
  """Writes mu-law codes [T] int32 as a 16 kHz WAV at `path`, with its spectrogram PNG beside it."""
  audio = dsp.dequantize(np.asarray(codes), model.num_classes - 1)
  dsp.save_audio(path, audio, SAMPLE_RATE)
  dsp.save_spectrogram_png(path[:-4] + ".png", audio, SAMPLE_RATE, os.path.basename(path)[:-4])


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.wavenet_style_pairs", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="output directory (created)")
  parser.add_argument("--pairs", type=int, default=5, help="content/style pairs (default 5)")
  parser.add_argument("--seconds", type=cli.positive_float, default=1.0, help="length of every clip (default 1)")
  parser.add_argument("--block", type=int, default=64, help="columns optimised together")
  parser.add_argument("--steps", type=int, default=20, help="Adam steps per block")
  parser.add_argument("--joint-steps", type=int, default=200, help="Adam steps of the joint relaxation")
  parser.add_argument("--learning-rate", type=cli.positive_float, default=0.1, help="Adam learning rate on the logits")
  parser.add_argument("--content-weight", type=cli.non_negative_float, default=1.0, help="weight of the content loss")
  parser.add_argument("--style-weight", type=cli.non_negative_float, default=100.0,
                      help="weight of the Gram style loss")
  parser.add_argument("--corpus-config", default="full", help="voices config to draw the clips from")
  parser.add_argument("--split", default="validation", help="split to draw the clips from")
  parser.add_argument("--data-dir", help="TFDS data dir (default: $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--checkpoint", default=pretrained.SHIPPED_CHECKPOINT, help="WaveNet checkpoint")
  args = parser.parse_args(argv)
  for name in ("pairs", "block", "steps", "joint_steps"):
    if getattr(args, name) < 1:
      raise InputError(f"--{name.replace('_', '-')} must be at least 1")

  model, params, _ = pretrained.load_wavenet(args.checkpoint)
  num_samples = round(args.seconds * SAMPLE_RATE)
  if num_samples < model.receptive_field:
    raise InputError(f"--seconds {args.seconds}: clips must be at least the receptive field "
                     f"({model.receptive_field} samples)")
  records = corpora.load_split("voices", args.corpus_config, args.split, args.data_dir)
  pairs = pick_pairs(records, corpora.speaker_names("voices", args.corpus_config, args.data_dir), corpora.gender_names(),
                     args.pairs, num_samples)
  content_layer, style_layers = ws.default_layers(model.num_layers)
  with cli.output_dir(args.out) as staging:
    rows = []
    print("| pair | content | style | start | coordinate | joint | coordinate s | joint s |")
    print("|---|---|---|---|---|---|---|---|")
    for index, (content_name, content_audio, style_name, style_audio) in enumerate(pairs):
      content = jnp.asarray(dsp.quantize(content_audio, model.num_classes - 1))
      style = jnp.asarray(dsp.quantize(style_audio, model.num_classes - 1))
      task = ws.make_style_task(model, params, content, style, content_layer, style_layers, args.content_weight,
                                args.style_weight, args.block, args.steps, args.learning_rate)
      row = {"pair": index, "content_speaker": content_name, "style_speaker": style_name,
             "start": ws.task_losses(task, params, content)}
      directory = os.path.join(staging, f"pair_{index}")
      os.makedirs(directory, exist_ok=True)
      save_clip(os.path.join(directory, "content.wav"), content, model)
      save_clip(os.path.join(directory, "style.wav"), style, model)
      methods = {"coordinate": lambda: ws.coordinate_descent(task.problem, params, content),
                 "joint": lambda: ws.joint_relaxation(task.problem, params, steps=args.joint_steps)}
      for method, run in methods.items():
        tic = time.perf_counter()
        codes = jax.block_until_ready(run().codes)
        row[method] = dict(ws.task_losses(task, params, codes), seconds=time.perf_counter() - tic)
        save_clip(os.path.join(directory, f"{method}.wav"), codes, model)
      rows.append(row)
      print(f"| {index} | {content_name} | {style_name} | {row['start']['total']:.4g} | "
            f"{row['coordinate']['total']:.4g} | {row['joint']['total']:.4g} | {row['coordinate']['seconds']:.0f} | "
            f"{row['joint']['seconds']:.0f} |", flush=True)
    wins = sum(row["coordinate"]["total"] < row["joint"]["total"] for row in rows)
    print(f"coordinate descent has the lower total loss on {wins} of {len(rows)} pairs "
          f"({args.seconds:g} s clips, block {args.block}, {args.steps} steps, joint {args.joint_steps} steps; "
          "times include compilation on the first pair)")
    save_json(os.path.join(staging, "results.json"),
                  {"checkpoint": args.checkpoint, "seconds": args.seconds, "block": args.block, "steps": args.steps,
                   "joint_steps": args.joint_steps, "content_layer": content_layer, "style_layers": list(style_layers),
                   "coordinate_wins": wins, "pairs": rows})


if __name__ == "__main__":
  cli.run(main)
