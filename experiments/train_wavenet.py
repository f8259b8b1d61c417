"""Train a conditional WaveNet (flags only; the logic is in wavenet/train.py).

    python -m experiments.train_wavenet --config experiments/configs/wavenet_voices.py --workdir runs/NAME \
        [--config.model.residual_channels=64 ...]

Rerunning the same command resumes from the last checkpoint in --workdir.
"""

from absl import flags
from ml_collections import config_flags

from common import cli
from wavenet.train import train_and_evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics.csv, TensorBoard events)",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/wavenet_voices.py",
                                          "config file, optionally with :variant (e.g. :smoke)")


def main(argv):
  del argv
  cli.maybe_initialize_distributed()
  train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_absl(main)
