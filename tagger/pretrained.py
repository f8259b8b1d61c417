"""Loading trained taggers from their training checkpoints."""

from common.errors import InputError
from tagger.model import build_model
from training.checkpoint import load_model_checkpoint


def load_tagger(path):
  """(model, params, tag names, (corpus name, corpus config)) from a tagger workdir or checkpoint folder.

  Raises:
    InputError: no checkpoint there, or one that is not a tagger's.
  """
  model_config, params, labels = load_model_checkpoint(path)
  if "tags" not in labels or "frontend" not in model_config:
    raise InputError(f"{path}: not a tagger checkpoint; pass a workdir of experiments.train_tagger")
  return build_model(model_config), params, list(labels["tags"]), tuple(labels["corpus"])
