"""Train a vocoder: the WaveNet or the source-filter network (flags only; the logic is in vocoder/train.py).

    python -m experiments.train_vocoder --config experiments/configs/vocoder_voices.py --workdir runs/NAME \
        [--config.train.num_steps=1000 ...]

Rerunning the same command resumes from the last checkpoint in --workdir.
"""

from common import cli
from vocoder.train import train_and_evaluate

if __name__ == "__main__":
  cli.run_training(train_and_evaluate, "experiments/configs/vocoder_voices.py")
