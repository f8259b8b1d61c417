"""Train the frame-rate VLAE (flags only; the logic is in vlae/train_frames.py).

    python -m experiments.train_frame_vlae --config experiments/configs/frame_vlae_voices.py --workdir runs/NAME \
        [--config.train.num_steps=1000 ...]

Rerunning the same command resumes from the last checkpoint in --workdir.
"""

from common import cli
from vlae.train_frames import train_and_evaluate

if __name__ == "__main__":
  cli.run_training(train_and_evaluate, "experiments/configs/frame_vlae_voices.py")
