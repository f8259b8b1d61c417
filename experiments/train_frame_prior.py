"""Train the frame prior (flags only; the logic is in frameprior/train.py).

    python -m experiments.train_frame_prior --config experiments/configs/frame_prior_voices.py --workdir runs/NAME \
        [--config.train.num_steps=1000 ...]

Rerunning the same command resumes from the last checkpoint in --workdir.
"""

from common import cli
from frameprior.train import train_and_evaluate

if __name__ == "__main__":
  cli.run_training(train_and_evaluate, "experiments/configs/frame_prior_voices.py")
