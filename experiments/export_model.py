"""Export a trained checkpoint's parameters (no optimiser state) as a model folder, e.g. for models/.

    python -m experiments.export_model --checkpoint runs/source_filter --out models/vocoder

Every command that takes --checkpoint reads the result like a training workdir.
"""

import argparse

from common import cli
from training.checkpoint import export_parameters


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.export_model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", required=True, help="training workdir, its checkpoints folder or a step folder")
  parser.add_argument("--out", required=True, help="the model folder to create (must not exist)")
  args = parser.parse_args(argv)
  step = export_parameters(args.checkpoint, args.out)
  print(f"exported the parameters of step {step} to {args.out}")


if __name__ == "__main__":
  cli.run(main)
