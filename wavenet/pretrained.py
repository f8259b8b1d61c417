"""Loading trained WaveNets: the shipped model and any training checkpoint."""

import os

from common.errors import InputError
from training.checkpoint import load_model_checkpoint
from wavenet.model import build_model

SHIPPED_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                                  "wavenet_voices")


def load_wavenet(path=SHIPPED_CHECKPOINT):
  """(model, params, labels) from a WaveNet training workdir or checkpoint folder.

  Raises:
    InputError: a missing checkpoint, or one of another model.
  """
  model_config, params, labels = load_model_checkpoint(path)
  try:
    model = build_model(model_config)
  except TypeError:
    raise InputError(f"{path}: not a WaveNet checkpoint; pass one written by experiments.train_wavenet") from None
  return model, params, labels
