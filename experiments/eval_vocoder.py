"""Copy-synthesis evaluation of a vocoder on training speakers, held-out speakers and unseen voices.

examples:
  python -m experiments.eval_vocoder --out out/eval_vocoder
  python -m experiments.eval_vocoder --checkpoint runs/source_filter --per-speaker 3 --seconds 2 --out out/eval_nsf

For each speaker, the first --per-speaker utterances at least --seconds long
(validation split of the training speakers; the heldout_speakers split; the
engine variants of corpora.voices.roster.UNSEEN_VARIANTS, rendered now) are
resynthesised from their frame features and scored against the original by
pYIN: V/UV error, gross pitch error (> 20% off), F0 RMSE in cents, and
log-spectral distance. WORLD resynthesis is the DSP reference row. Writes
every utterance's WAVs and PNG, eval.md (the table) and eval.json.
"""

import argparse
import json
import os
import time

import jax
from tqdm import tqdm

import corpora
import dsp
from common import cli
from common.errors import InputError
from common.files import atomic_path
from corpora import batching
from corpora.schema import SAMPLE_RATE
from dsp import frames as frames_lib
from vocoder import evaluate, synthesis
from vocoder import features as features_lib

_BATCH = 16  # utterances vocoded together


def corpus_utterances(name, config, split, per_speaker, num_samples, data_dir):
  """[(speaker name, gender, audio [num_samples], FrameFeatures)] of a split, per_speaker each."""
  clips = batching.preload(corpora.load_split(name, config, split, data_dir))
  split_frames = features_lib.load_split_frames(name, config, split, clips, SAMPLE_RATE, data_dir)
  labels = batching.speaker_labels(name, config, clips, data_dir)
  out, taken = [], {}
  for index in range(len(clips)):
    speaker = labels["speaker"][clips.speaker[index]]
    if clips.lengths[index] < num_samples or taken.get(speaker, 0) >= per_speaker:
      continue
    taken[speaker] = taken.get(speaker, 0) + 1
    out.append((speaker, labels["speaker_gender"].get(speaker, "?"), clips.clip(index)[:num_samples],
                split_frames.clip(index)))
  return out


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_vocoder", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", default=synthesis.SHIPPED_CHECKPOINT,
                      help="vocoder workdir or checkpoint folder (default: the shipped models/vocoder)")
  parser.add_argument("--per-speaker", type=int, default=2, help="utterances per speaker (default 2)")
  parser.add_argument("--seconds", type=cli.positive_float, default=2.0, help="seconds scored of each (default 2)")
  parser.add_argument("--temperature", type=cli.positive_float, default=1.0,
                      help="softmax temperature of an autoregressive vocoder (default 1)")
  parser.add_argument("--sets", nargs="+", default=["validation", "heldout", "unseen"],
                      choices=["validation", "heldout", "unseen"], help="which utterance sets (default all three)")
  parser.add_argument("--corpus-config", default="full", help="voices config of the corpus sets (default full)")
  parser.add_argument("--data-dir", help="TFDS data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed of the synthesis")
  parser.add_argument("--out", default="out/eval_vocoder", help="output directory (default out/eval_vocoder)")
  args = parser.parse_args(argv)
  if not 1 <= args.per_speaker <= 50:
    raise InputError(f"--per-speaker {args.per_speaker}: give 1 to 50")
  if args.seconds > 10:
    raise InputError(f"--seconds {args.seconds:g}: give at most 10 (utterances are 2-5 s)")
  num_samples = cli.seconds_to_samples(args.seconds, SAMPLE_RATE)
  model, params, _ = synthesis.load_vocoder(args.checkpoint)
  utterances = []
  for set_name in args.sets:
    if set_name == "unseen":
      rendered = [(s, g, a[:num_samples]) for s, g, a in evaluate.unseen_utterances(args.per_speaker)
                  if len(a) >= num_samples]
      found = [(s, g, a, frames_lib.frame_features(a, SAMPLE_RATE)) for s, g, a in rendered]
    else:
      split = "validation" if set_name == "validation" else "heldout_speakers"
      found = corpus_utterances("voices", args.corpus_config, split, args.per_speaker, num_samples, args.data_dir)
    utterances += [(set_name, *u) for u in found]
  if not utterances:
    raise InputError(f"no utterance is {args.seconds:g} s long; ask for fewer --seconds")
  with cli.output_dir(args.out) as staging:
    tic = time.perf_counter()
    outputs = []
    for first in tqdm(range(0, len(utterances), _BATCH), desc="vocoding", unit="batch", dynamic_ncols=True):
      chunk = utterances[first:first + _BATCH]
      outputs += list(synthesis.vocode(model, params, [u[4] for u in chunk], num_samples,
                                       jax.random.key(args.seed + first), SAMPLE_RATE, temperature=args.temperature))
    print(f"vocoded {len(utterances)} x {args.seconds:g} s in {time.perf_counter() - tic:.0f} s")
    rows, taken = [], {}
    for (set_name, speaker, gender, audio, _), output in tqdm(list(zip(utterances, outputs)), desc="scoring",
                                                              unit="utt", dynamic_ncols=True):
      rank = taken[speaker] = taken.get(speaker, -1) + 1
      stem = os.path.join(staging, f"{set_name}_{speaker}_{rank}")
      world = evaluate.world_resynthesis(audio, SAMPLE_RATE)
      for system, signal in (("vocoder", output), ("WORLD", world)):
        rows.append(dict(set=set_name, speaker=speaker, gender=gender, system=system,
                         **evaluate.score(audio, signal, SAMPLE_RATE)))
      for suffix, signal in (("original", audio), ("vocoded", output), ("world", world)):
        dsp.save_audio(f"{stem}_{suffix}.wav", signal, SAMPLE_RATE)
      dsp.save_spectrograms_png(f"{stem}.png", [("original", audio), ("vocoded", output), ("WORLD", world)],
                                SAMPLE_RATE)
    summary = evaluate.summarise(rows)
    table = evaluate.markdown_table(summary)
    with atomic_path(os.path.join(staging, "eval.md"), ".md") as temporary:
      with open(temporary, "w") as file:
        file.write(f"checkpoint: {os.path.abspath(args.checkpoint)}; {args.per_speaker} x {args.seconds:g} s "
                   f"per speaker, temperature {args.temperature:g}\n\n{table}")
    with atomic_path(os.path.join(staging, "eval.json"), ".json") as temporary:
      with open(temporary, "w") as file:
        json.dump(rows, file, indent=1)
    print(table)
    print(f"wrote {len(utterances)} utterances' WAVs and PNGs, eval.md and eval.json to {args.out}")


if __name__ == "__main__":
  cli.run(main)
