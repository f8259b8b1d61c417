"""Train the MLP VAE on binarised digits, then print its test ELBO and IWAE NLL (nats per image).

    python -m experiments.train_vae --config experiments/configs/vae_digits.py --workdir runs/NAME
    python -m experiments.train_vae --config experiments/configs/vae_digits.py:smoke --workdir /tmp/smoke
    python -m experiments.train_vae --workdir runs/flow --config.model.prior=flow

Writes metrics.csv and TensorBoard events (the shared loop), then
test_metrics.json, prior_samples.png and reconstructions.png into --workdir.
Rerunning the same command resumes from the last checkpoint, then evaluates.
"""

from absl import flags
from ml_collections import config_flags

from common import cli
from vlae.train_mnist import train_and_evaluate

_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics, test bounds, figures)",
                               required=True)
_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/vae_digits.py",
                                          "config file, optionally with :variant (e.g. :smoke)")


def main(argv):
  del argv
  cli.maybe_initialize_distributed()
  metrics = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(f"{metrics['dataset']} test, {metrics['num_images']} images, step {metrics['step']}: "
        f"ELBO {metrics['elbo_nats']:.3f} nats, IWAE-{metrics['iwae_samples']} NLL {metrics['nll_iwae_nats']:.3f} nats")


if __name__ == "__main__":
  cli.run_absl(main)
