"""Orbax checkpoints of one TrainState plus the config that made it."""

import contextlib
import json
import logging
import os
import shutil
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp

from dsp.errors import InputError


class Checkpointer:
  """Keeps the last `keep` checkpoints under `workdir/checkpoints`.

  Each checkpoint holds two items: `state` (the TrainState pytree) and
  `config`, JSON of {"model": the model config, "labels": names of the
  conditioning ids, "totals": the run's cost to reach this step}, so a
  checkpoint can be checked against, or rebuilt from, the config that made
  it, and a killed run loses at most one checkpoint interval of accounting.
  """

  def __init__(self, workdir, keep=3, save_every=1000):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=("state", "config"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=True,  # a save cut short leaves no tmp folder
            # Every `save_every` steps and on preemption; not Orbax's default extra save of the first step.
            save_decision_policy=ocp.checkpoint_managers.AnySavePolicy([
                ocp.checkpoint_managers.FixedIntervalPolicy(save_every),
                ocp.checkpoint_managers.PreemptionCheckpointingPolicy()])))

  def latest_step(self):
    return self._manager.latest_step()

  def should_save(self, step):
    """Whether `save(step, ...)` without `force` would write a checkpoint."""
    return self._manager.should_save(step)

  def save(self, step, state, model_config, labels, totals=None, force=False):
    """Saves if `step` is on the save interval, or always with `force`; returns whether it saved.

    Args:
      totals: JSON-able {"runs", "wall_s"} of the training that reached `step`, across resumes (the loop's).
    """
    config = {"model": model_config, "labels": labels} | ({"totals": totals} if totals else {})
    return self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config)), force=force)

  def restore_newest_intact(self, abstract_state, model_config):
    """Restores the newest checkpoint that reads back, into the structure of `abstract_state`.

    A checkpoint that cannot be read (a truncated or missing file, an empty
    step folder) is moved to `workdir/unreadable_checkpoints/STEP`, said in
    one line, and the next older one is tried.

    Returns:
      (state, totals) of the restored checkpoint (totals {"runs", "wall_s"}, zero
      for a checkpoint written before they were recorded), or (None, None) when
      no checkpoint reads back (each was moved aside).

    Raises:
      InputError: the checkpoint was written for another model config.
    """
    while (step := self._manager.latest_step()) is not None:
      try:
        saved_config = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
        check_same_config(saved_config["model"], model_config, self.directory)
        state = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]
        return state, saved_config.get("totals", {"runs": 0, "wall_s": 0.0})
      except InputError:
        raise
      except Exception as error:  # Orbax, tensorstore and zstd raise many types for a damaged file.
        aside = os.path.join(os.path.dirname(self.directory), "unreadable_checkpoints", str(step))
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(os.path.join(self.directory, str(step)), aside)
        self._manager.reload()
        print(f"checkpoint step {step} is unreadable ({_first_line(error)}); moved it to {aside} and trying the "
              "next older one")
    return None, None

  def remove_unfinished(self):
    """Deletes the temporary folders of saves that did not finish (e.g. on a full disk)."""
    for name in os.listdir(self.directory):
      if "orbax-checkpoint-tmp" in name:
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

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


@contextlib.contextmanager
def _quiet_absl():
  """Orbax warns that a read-only manager will not save, and that a bare item folder has no step metadata;
  reading is all we want."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _read_only_manager(directory):
  with _quiet_absl():
    return ocp.CheckpointManager(directory, item_names=("state", "config"),
                                 options=ocp.CheckpointManagerOptions(read_only=True, create=False))


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


def _first_line(error):
  """`TypeName: first line of the message` of an exception, for one-line reports."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _unreadable(step_folder, error):
  older = checkpoint_steps(os.path.dirname(step_folder))
  older = [step for step in older if step < int(os.path.basename(step_folder))]
  advice = (f"pass an older step's folder ({os.path.join(os.path.dirname(step_folder), str(older[-1]))})" if older
            else "pass a checkpoint written by this project's training")
  return InputError(f"{step_folder}: unreadable checkpoint ({_first_line(error)}); {advice}")


def _read_config(path):
  """(the JSON item of a checkpoint, its step folder, its step), without reading any array."""
  _, step_folder, step = locate_checkpoint(path)
  try:
    config = _read_only_manager(os.path.dirname(step_folder)).restore(
        step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    config["model"]  # a folder of another program fails here
    return config, step_folder, step
  except Exception as error:  # a damaged or foreign folder: JSON, Orbax and OS errors alike
    raise _unreadable(step_folder, error) from None


def load_model_config(path):
  """(model_config dict, labels dict) of a checkpoint (`locate_checkpoint`'s paths), without reading any array."""
  config, _, _ = _read_config(path)
  return config["model"], config.get("labels", {})


def checkpoint_totals(path):
  """{"step", "runs", "wall_s"}: a checkpoint's step, and the runs and wall seconds it took to reach it."""
  config, _, step = _read_config(path)
  return dict(config.get("totals", {"runs": 0, "wall_s": 0.0}), step=step)


def load_model_checkpoint(path):
  """Reads a checkpoint for inference: its config and parameters, never the optimiser state.

  Args:
    path: a run's workdir, its `checkpoints` folder, or one step's folder (see `locate_checkpoint`).

  Returns:
    (model_config dict, params pytree of numpy arrays, labels dict).

  Raises:
    InputError: one line naming the step folder when any part of it cannot be read.
  """
  _, step_folder, _ = locate_checkpoint(path)
  model_config, labels = load_model_config(step_folder)
  state_folder = os.path.join(step_folder, "state")
  try:
    with _quiet_absl():
      reader = ocp.PyTreeCheckpointer()
      params_metadata = reader.metadata(state_folder).item_metadata.tree["params"]
      restored = reader.restore(state_folder, args=ocp.args.PyTreeRestore(
          item={"params": jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), params_metadata)},
          restore_args={"params": jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), params_metadata)},
          partial_restore=True))
  except Exception as error:  # tensorstore, zstd, JSON and OS errors of a damaged folder
    raise _unreadable(step_folder, error) from None
  return model_config, restored["params"], labels


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
