"""Export a trained checkpoint's parameters (no optimiser state) as a model folder, e.g. for models/.

    python -m experiments.export_model --checkpoint runs/source_filter --out models/vocoder
    python -m experiments.export_model --checkpoint runs/frame_vlae --out models/frame_vlae --band-statistics

Every command that takes --checkpoint reads the result like a training workdir.
"""

import argparse

from common import cli
from common.errors import InputError
from frameprior.train import load_frames
from training.checkpoint import load_model_config, export_parameters
from vlae import band_fill, frame_evaluation


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.export_model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", required=True, help="training workdir, its checkpoints folder or a step folder")
  parser.add_argument("--out", required=True, help="the model folder to create (must not exist)")
  parser.add_argument("--band-statistics", action="store_true",
                      help="a frame-rate VLAE trained before its checkpoints kept them: fit the band statistics of "
                      "its training frames (vlae.band_fill), from the corpus it names, into the exported labels")
  parser.add_argument("--data-dir", help="corpus data dir for --band-statistics (default $ELECTRIC_BEATS_DATA or "
                      "data/tfds)")
  args = parser.parse_args(argv)
  extra_labels = None
  if args.band_statistics:
    model_config, labels = load_model_config(args.checkpoint)
    if model_config.get("architecture") != "frame_vlae":
      raise InputError(f"--band-statistics: {args.checkpoint} is not a frame-rate VLAE; drop the flag")
    _, _, vectors = load_frames(frame_evaluation.corpus_of(labels, args.data_dir), "train")
    extra_labels = {"band_statistics": band_fill.fit(vectors)}
  step = export_parameters(args.checkpoint, args.out, extra_labels)
  print(f"exported the parameters of step {step} to {args.out}"
        + (f" with the band statistics of {len(vectors):,} training frames" if extra_labels else ""))


if __name__ == "__main__":
  cli.run(main)
