"""Train the frame-rate VLAE (flags only; the logic is in vlae/train_frames.py).

    python -m experiments.train_frame_vlae --config experiments/configs/frame_vlae_voices.py --workdir runs/NAME \
        [--config.model.residual_channels=64 ...]

Rerunning the same command resumes from the last checkpoint in --workdir.
"""

from absl import flags
from ml_collections import config_flags

from experiments import cli
from training.loop import maybe_initialize_distributed
from vlae.train_frames import train_and_evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics.csv, TensorBoard events)",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/frame_vlae_voices.py",
                                          "config file, optionally with :variant (e.g. :smoke)")


def main(argv):
  del argv
  maybe_initialize_distributed()
  train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_absl(main)
