"""Orbax checkpoints of one TrainState plus the config that made it."""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore

from common.errors import InputError


class _OrbaxFailuresAsExceptions(logging.Filter):
  """Drops Orbax's ERROR log lines: it logs a failed background save before raising it, and the raised error
  is what the loop reports (a full disk as one line)."""

  def filter(self, record):
    return record.levelno < logging.ERROR or f"{os.sep}orbax{os.sep}" not in record.pathname


class _DroppedFutures(logging.Filter):
  """Drops asyncio's "exception was never retrieved" lines: when one of Orbax's parallel writes fails, the
  others' failures are dropped futures, and the first failure is raised and reported."""

  def filter(self, record):
    return "exception was never retrieved" not in record.getMessage()


for _logger, _filter in ((logging.getLogger("absl"), _OrbaxFailuresAsExceptions),
                         (logging.getLogger("asyncio"), _DroppedFutures)):
  if not any(isinstance(existing, _filter) for existing in _logger.filters):
    _logger.addFilter(_filter())


def _drop_closed_loop_callbacks(previous):
  """An unraisable-exception hook that drops tensorstore callbacks that find Orbax's event loop closed (after a
  save or restore already failed, and was reported, they would print a traceback each), and passes on the rest."""
  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
      previous(unraisable)
  hook.drops_closed_loop_callbacks = True
  return hook


if not getattr(sys.unraisablehook, "drops_closed_loop_callbacks", False):
  sys.unraisablehook = _drop_closed_loop_callbacks(sys.unraisablehook)


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

  def save(self, step, state, model_config, labels, totals=None, force=False):
    """Saves if `step` is on the save interval, or always with `force`; returns whether it saved.

    The JSON item records a digest of the state's arrays and of its
    parameters, so a flipped byte that the storage format itself would not
    notice is caught on restore.

    Args:
      totals: JSON-able {"runs", "wall_s"} of the training that reached `step`, across resumes (the loop's).
    """
    if not (force or self._manager.should_save(step)):
      return False
    host = jax.device_get(state)
    config = {"model": model_config, "labels": labels, "digest": {"state": digest(host), "params": digest(
        _params_of(host))}} | ({"totals": totals} if totals else {})
    return self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config)), force=True)

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
        with _quiet_absl():
          saved_config = self._manager.restore(
              step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
        check_same_config(saved_config["model"], model_config, self.directory)
        verify_arrays(os.path.join(self.directory, str(step), "state"))
        state = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]
        check_digest(saved_config, "state", state)
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

  def remove_unfinished(self, timeout_s=10.0):
    """Deletes the temporary folders of saves that did not finish (e.g. on a full disk); call after `close`.

    After a failed save Orbax's writer threads can still be finishing (and
    recreating the folder), so they are given up to `timeout_s` to end first.
    """
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
      if thread is not threading.current_thread() and not thread.daemon:
        with contextlib.suppress(Exception):  # Orbax's threads re-raise their failure on join
          thread.join(max(0.0, deadline - time.monotonic()))
    for name in os.listdir(self.directory):
      if "orbax-checkpoint-tmp" in name:
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()


def _params_of(state):
  return state["params"] if isinstance(state, dict) else state.params


def digest(tree):
  """A SHA-256 hex digest of a pytree's leaves: their order, shapes, dtypes and bytes."""
  hasher = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(tree)):
    leaf = np.asarray(leaf)
    hasher.update(f"{leaf.shape}{leaf.dtype}".encode())
    hasher.update(np.ascontiguousarray(leaf).tobytes())
  return hasher.hexdigest()


def check_digest(saved_config, item, tree):
  """Raises ValueError when `tree` does not match the digest saved for `item` ("state" or "params");
  checkpoints written before digests were recorded pass."""
  expected = saved_config.get("digest", {}).get(item)
  if expected is not None and digest(tree) != expected:
    raise ValueError(f"its {item} arrays differ from the digest saved with them (a damaged file)")


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


def verify_arrays(state_folder, prefix=""):
  """Reads back every stored chunk of a checkpoint's `state` item whose key starts with `prefix`, one by one.

  OCDBT checksums its b-tree nodes, so a truncated, byte-flipped or
  missing file fails here as a ValueError in this thread, before Orbax's
  parallel restore, whose failures also spray asyncio tracebacks on stderr.
  A folder not in OCDBT format is left to Orbax.
  """
  if not os.path.isfile(os.path.join(state_folder, "manifest.ocdbt")):
    return
  store = tensorstore.KvStore.open({"driver": "ocdbt", "base": f"file://{os.path.abspath(state_folder)}"}).result()
  for key in store.list().result():
    if key.decode().startswith(prefix):
      store.read(key).result()


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
  saved_config, _, _ = _read_config(step_folder)
  state_folder = os.path.join(step_folder, "state")
  try:
    with _quiet_absl():
      verify_arrays(state_folder, prefix="params.")
      reader = ocp.PyTreeCheckpointer()
      metadata = reader.metadata(state_folder).item_metadata
      if metadata is None:
        raise ValueError("its array metadata cannot be read")
      params_metadata = metadata.tree["params"]
      restored = reader.restore(state_folder, args=ocp.args.PyTreeRestore(
          item={"params": jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), params_metadata)},
          restore_args={"params": jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), params_metadata)},
          partial_restore=True))
    check_digest(saved_config, "params", restored["params"])
  except Exception as error:  # tensorstore, zstd, JSON and OS errors of a damaged folder
    raise _unreadable(step_folder, error) from None
  return saved_config["model"], restored["params"], saved_config.get("labels", {})


def export_parameters(path, out_dir, extra_labels=None):
  """Writes the parameters (no optimiser state) and config of a checkpoint as a model folder.

  `extra_labels` (JSON-able) join the checkpoint's labels, e.g. statistics of
  the training data that inference needs and an older run did not record.

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
  labels = dict(labels, **(extra_labels or {}))
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
  try:
    manager = ocp.CheckpointManager(os.path.join(staging, "checkpoints"), item_names=("state", "config"),
                                    options=ocp.CheckpointManagerOptions(create=True))
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params}),
                                               config=ocp.args.JsonSave({
                                                 "model": model_config, "labels": labels,
                                                 "digest": {"params": digest(params),
                                                            "state": digest({"params": params})}})),
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
