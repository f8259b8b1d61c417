"""Orbax checkpoints of one TrainState plus the config that made it."""

import json
import logging
import os

import jax
import orbax.checkpoint as ocp

from dsp.errors import InputError


class Checkpointer:
  """Keeps the last `keep` checkpoints under `workdir/checkpoints`.

  Each checkpoint holds two items: `state` (the TrainState pytree) and
  `config`, JSON of {"model": the model config, "labels": names of the
  conditioning ids}, so a checkpoint can be checked against, or rebuilt from,
  the config that made it.
  """

  def __init__(self, workdir, keep=3, save_every=1000):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=("state", "config"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True))

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, step, state, model_config, labels, force=False):
    """Saves if `step` is on the save interval, or always with `force`."""
    config = {"model": model_config, "labels": labels}
    return self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config)), force=force)

  def restore(self, abstract_state, model_config, step=None):
    """Restores `step` (default: latest) into the structure of `abstract_state`.

    Raises:
      InputError: the checkpoint was written for another model config.
    """
    step = self._manager.latest_step() if step is None else step
    saved_config = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    check_same_config(saved_config["model"], model_config, self.directory)
    restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()


def _canonical(config):
  return json.loads(json.dumps(config))


def check_same_config(saved, current, where):
  """Raises InputError naming the fields where two model configs differ."""
  saved, current = _canonical(saved), _canonical(current)
  if saved == current:
    return
  fields = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
  details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}" for k in fields[:4])
  raise InputError(f"checkpoint in {where} was made with another model config ({details}); "
                   "use a fresh --workdir or the matching config")


def _read_only_manager(directory):
  # Orbax warns that a read-only manager will not save; reading is all we want.
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    return ocp.CheckpointManager(directory, item_names=("state", "config"),
                                 options=ocp.CheckpointManagerOptions(read_only=True, create=False))
  finally:
    logger.setLevel(level)


def load_model_checkpoint(path):
  """Reads a checkpoint for inference.

  Args:
    path: a run's workdir, its `checkpoints` folder, or one step's folder.

  Returns:
    (model_config dict, params pytree of numpy arrays, labels dict).
  """
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise InputError(f"{path}: no such checkpoint directory; pass a training workdir or its checkpoints folder")
  for candidate in (os.path.join(path, "checkpoints"), path):
    if os.path.isdir(candidate):
      manager = _read_only_manager(candidate)
      step = manager.latest_step()
      if step is not None:
        return _read_step(manager, step, path)
  step_dir = os.path.dirname(path)
  if os.path.basename(path).isdigit():
    manager = _read_only_manager(step_dir)
    return _read_step(manager, int(os.path.basename(path)), path)
  raise InputError(f"{path}: holds no checkpoint; pass a training workdir or its checkpoints folder")


def _read_step(manager, step, path):
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(), config=ocp.args.JsonRestore()))
  except (FileNotFoundError, ValueError, KeyError) as error:
    raise InputError(f"{path}: unreadable checkpoint at step {step} ({type(error).__name__}); "
                     "pass a checkpoint written by this project's training") from None
  state = restored["state"]
  params = state["params"] if isinstance(state, dict) else state.params
  config = restored["config"]
  return config["model"], jax.device_get(params), config.get("labels", {})
