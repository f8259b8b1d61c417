"""Evaluate frame-rate VLAEs: the validation ELBO, and what z carries about voices it never heard.

    python -m experiments.eval_frame_vlae --checkpoint models/frame_vlae runs/collapse/short_fb ...

For each checkpoint: the negative ELBO, reconstruction and KL on fixed
validation windows (3 s, the decoder reading its input with its own input
dropout), the reconstruction gained from a window's own z over another
window's (zero when the decoder ignores z), and three linear probes of the posterior mean of z (see
vlae/frame_evaluation.py): median log-F0 (R^2 on unheard voices), gender
(accuracy on unheard voices) and the 14 training speakers (cross-validated).
Two baseline rows come first: the first checkpoint's encoder at random
parameters, and the clip's mean log-mel. Unheard voices are the
heldout_speakers split and --unseen-per-voice utterances of each engine
variant in no split, rendered now. Prints a Markdown table and writes it with
every number to --out (JSON) when given.
"""

import argparse

import numpy as np
from tqdm import tqdm

from common import cli
from common.errors import InputError
from common.files import save_json
from vlae import frame_evaluation, frame_inference


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.eval_frame_vlae", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", nargs="+", required=True,
                      help="frame VLAE training workdirs, checkpoint folders or exported models")
  parser.add_argument("--unseen-per-voice", type=int, default=20,
                      help="utterances rendered per unseen engine variant (default 20; 0: held-out speakers only)")
  parser.add_argument("--batches", type=int, default=10, help="validation batches of 32 x 3 s windows (default 10)")
  parser.add_argument("--data-dir", help="corpus data dir (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", help="write the rows as JSON here (a .json file)")
  args = parser.parse_args(argv)
  if not 0 <= args.unseen_per_voice <= 200 or not 1 <= args.batches <= 100:
    raise InputError(f"--unseen-per-voice must be 0 to 200 and --batches 1 to 100, got {args.unseen_per_voice} "
                     f"and {args.batches}")
  if args.out:
    cli.check_output_file(args.out, (".json",))
  models = [(path,) + frame_inference.load_frame_vlae(path) for path in args.checkpoint]
  data = frame_evaluation.corpus_of(models[0][3], args.data_dir)
  fit_set = frame_evaluation.split_utterances(data, "validation")
  unheard = frame_evaluation.split_utterances(data, "heldout_speakers")
  if args.unseen_per_voice:
    unheard = frame_evaluation.concatenate(unheard, frame_evaluation.unseen_variant_utterances(args.unseen_per_voice))
  print(f"probes: fit on {len(fit_set.features)} validation utterances, scored on {len(unheard.features)} of "
        f"{len(np.unique(unheard.speaker))} unheard voices")
  first_model = models[0][1]
  representations = [
      ("untrained encoder", None, lambda s: frame_inference.encode_features(
          first_model, frame_evaluation.untrained_parameters(first_model), s.features)),
      ("mean log-mel", None, frame_evaluation.mean_log_mel)]
  for path, model, params, _ in models:
    representations.append((path, (model, params), lambda s, m=model, p=params: frame_inference.encode_features(
        m, p, s.features)))
  rows = []
  for name, trained, represent in tqdm(representations, desc="evaluate", unit="row", dynamic_ncols=True):
    row = {"name": name}
    if trained is not None:
      model, params = trained
      row.update(decoder_input_dropout=model.decoder_input_dropout,
                 **frame_evaluation.validation_elbo(model, params, data, args.batches, 32, 300))
    row.update(frame_evaluation.probe_scores(fit_set, represent(fit_set), unheard, represent(unheard)))
    rows.append(row)
  fmt = lambda row, key, spec: format(row[key], spec) if key in row else "-"
  print("\n| representation | decoder input dropout | -ELBO bits/frame | reconstruction bits/frame | "
        "KL bits/3 s | gain from own z, bits/frame | pitch R^2, unheard | gender, unheard | speaker (14), validation |")
  print("|---|---|---|---|---|---|---|---|---|")
  for row in rows:
    print(f"| {row['name']} | {fmt(row, 'decoder_input_dropout', 'g')} | "
          f"{fmt(row, 'negative_elbo_bits_per_frame', '.2f')} | {fmt(row, 'reconstruction_bits_per_frame', '.2f')} | "
          f"{fmt(row, 'kl_bits_per_window', '.1f')} | {fmt(row, 'z_gain_bits_per_frame', '.2f')} | {row['pitch_r2']:.3f} | {row['gender_accuracy']:.1%} | "
          f"{row['speaker_accuracy']:.1%} |")
  if args.out:
    save_json(args.out, {"checkpoints": args.checkpoint, "unseen_per_voice": args.unseen_per_voice,
                             "fit_utterances": len(fit_set.features), "unheard_utterances": len(unheard.features),
                             "rows": rows})


if __name__ == "__main__":
  cli.run(main)
