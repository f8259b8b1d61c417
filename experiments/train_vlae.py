"""Train the audio VLAE (flags only; the logic is in vlae/train_audio.py).

    python -m experiments.train_vlae --config experiments/configs/vlae_voices.py:small --workdir runs/NAME \
        [--config.objective.free_bits=0 ...]

Writes checkpoints, metrics.csv and TensorBoard events into --workdir;
rerunning the same command resumes from the last checkpoint. Evaluate the
result with `python -m experiments.eval_vlae --workdir runs/NAME`.
"""

from absl import flags
from ml_collections import config_flags

from common import cli
from vlae.train_audio import train_and_evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics.csv, TensorBoard events)",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/vlae_voices.py",
                                          "config file, optionally with :variant (small, medium, deep, smoke)")


def main(argv):
  del argv
  cli.maybe_initialize_distributed()
  train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run_absl(main)
