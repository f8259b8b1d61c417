"""Orbax checkpoints of one TrainState plus the config that made it."""

import json
import logging
import os
import shutil
import tempfile

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
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True,
            # Every `save_every` steps and on preemption; not Orbax's default extra save of the first step.
            save_decision_policy=ocp.checkpoint_managers.AnySavePolicy([
                ocp.checkpoint_managers.FixedIntervalPolicy(save_every),
                ocp.checkpoint_managers.PreemptionCheckpointingPolicy()])))

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


def checkpoint_steps(folder):
  """The steps of the checkpoints in `folder` (its all-digit subfolders), ascending; [] if none or no folder.

  Orbax writes a checkpoint under a temporary name and renames it when
  complete, so an unfinished save is never listed.
  """
  if not os.path.isdir(folder):
    return []
  return sorted(int(name) for name in os.listdir(folder) if name.isdigit() and os.path.isdir(os.path.join(folder, name)))


def locate_checkpoint(path):
  """Resolves a checkpoint path: (workdir, step folder, step).

  Args:
    path: a run's workdir, its `checkpoints` folder, or one step's folder
      (`checkpoints/STEP`); the first two mean their newest step.

  Returns:
    (workdir: the run directory, where outputs about the run belong (never
    inside the Orbax tree); step folder: absolute path of the checkpoint;
    step: its training step, int).

  Raises:
    InputError: the path does not exist or holds no checkpoint.
  """
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise InputError(f"{path}: no such checkpoint directory; pass a training workdir or its checkpoints folder")
  for workdir, folder in ((path, os.path.join(path, "checkpoints")), (os.path.dirname(path), path)):
    steps = checkpoint_steps(folder)
    if steps:
      return workdir, os.path.join(folder, str(steps[-1])), steps[-1]
  if os.path.basename(path).isdigit():
    return os.path.dirname(os.path.dirname(path)), path, int(os.path.basename(path))
  raise InputError(f"{path}: holds no checkpoint; pass a training workdir, its checkpoints folder or one step's folder")


def load_model_checkpoint(path):
  """Reads a checkpoint for inference.

  Args:
    path: a run's workdir, its `checkpoints` folder, or one step's folder (see `locate_checkpoint`).

  Returns:
    (model_config dict, params pytree of numpy arrays, labels dict).
  """
  _, step_folder, step = locate_checkpoint(path)
  return _read_step(_read_only_manager(os.path.dirname(step_folder)), step, os.path.abspath(path))


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


def export_parameters(path, out_dir):
  """Writes the parameters (no optimiser state) and config of a checkpoint as a model folder.

  `out_dir` then holds checkpoints/STEP with state {"params": ...}, which
  `load_model_checkpoint` reads like a training workdir, plus the run's
  metrics.csv. The folder is written beside `out_dir` and renamed into place.

  Raises:
    InputError: an unreadable checkpoint, or an `out_dir` that exists.
  """
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir):
    raise InputError(f"{out_dir} exists; remove it or choose another output folder")
  workdir, _, step = locate_checkpoint(path)
  model_config, params, labels = load_model_checkpoint(path)
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
  try:
    manager = ocp.CheckpointManager(os.path.join(staging, "checkpoints"), item_names=("state", "config"),
                                    options=ocp.CheckpointManagerOptions(create=True))
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params}),
                                               config=ocp.args.JsonSave({"model": model_config, "labels": labels})),
                 force=True)
    manager.wait_until_finished()
    manager.close()
    for name in ("metrics.csv", "model_config.json"):
      if os.path.isfile(os.path.join(workdir, name)):
        shutil.copy(os.path.join(workdir, name), staging)
    os.replace(staging, out_dir)
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging)
  return step
