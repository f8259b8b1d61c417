"""The one training loop: sharded jitted steps, evaluation, checkpoints, metrics.

Data parallel over every device of every process: the batch axis is split
over a 1-D mesh named "batch", the state is replicated. The same code runs on
one CPU, eight GPUs or a TPU slice; launched with JAX_COORDINATOR_ADDRESS set,
each process feeds its own rows of the global batch.
"""

import contextlib
import errno
import fcntl
import math
import os
import signal
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from common.errors import InputError, is_disk_full, StoppedBySignal
from common.files import make_dir, save_json
from training import memory
from training import state as state_lib
from training.checkpoint import checkpoint_steps, Checkpointer
from training.metrics import MetricWriter

BLOWUP_FACTOR = 10.0  # a parameter norm this many times its value at the last checkpoint means divergence


class Sharding:
  """Places replicated state and batch-split data on a 1-D device mesh."""

  def __init__(self):
    self.mesh = jax.make_mesh((jax.device_count(),), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
    self.data = NamedSharding(self.mesh, PartitionSpec("batch"))
    self.replicated = NamedSharding(self.mesh, PartitionSpec())

  def check_batch_size(self, batch_size):
    if batch_size % jax.device_count():
      raise InputError(f"batch size {batch_size} does not split over {jax.device_count()} devices; "
                       "use a multiple of the device count")

  def put_batch(self, global_batch):
    """Global numpy batch -> arrays sharded on the batch axis (this process's rows)."""
    def put(array):
      rows = array.shape[0] // jax.process_count()
      local = array[jax.process_index() * rows:(jax.process_index() + 1) * rows]
      return jax.make_array_from_process_local_data(self.data, local)
    return jax.tree.map(put, global_batch)


def _mean_metrics(metric_list, weights):
  """Each metric's mean over batches, batch i weighted by weights[i] (its real rows)."""
  return {name: float(np.average([float(m[name]) for m in metric_list], weights=weights)) for name in metric_list[0]}


def _with_bits(metrics, loss_unit, prefix=""):
  """Prefixes the names and adds the loss (nats per `loss_unit`) in bits as `bits_per_{loss_unit}`."""
  out = {f"{prefix}{name}": value for name, value in metrics.items()}
  out[f"{prefix}bits_per_{loss_unit}"] = metrics["loss"] / math.log(2.0)
  return out


class _StopRequest:
  """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.requested = signum

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


@contextlib.contextmanager
def workdir_lock(workdir):
  """Holds an advisory lock on `workdir/.lock` (with this process's pid) for the life of a run.

  The kernel drops the lock when the process dies, kill -9 included, so a
  stale lock file never blocks a rerun.

  Raises:
    InputError: another live process holds the lock (its pid is named).
  """
  path = os.path.join(workdir, ".lock")
  try:
    file = open(path, "a+")
  except OSError as error:
    raise InputError(f"--workdir {workdir}: cannot write to it ({error.strerror}); choose another directory") from None
  with file:
    try:
      fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      if error.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      file.seek(0)
      holder = file.read().strip() or "unknown"
      raise InputError(f"--workdir {workdir} is in use by another training run (pid {holder}); wait for it to "
                       "finish, stop it, or choose another --workdir") from None
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()}\n")
    file.flush()
    try:
      yield
    finally:
      fcntl.flock(file, fcntl.LOCK_UN)


def _check_settings(train_config, batch_size, samples_per_batch):
  """Raises InputError on settings that cannot train, naming the config field."""
  counts = {"train.num_steps": train_config.num_steps, "train.log_every": train_config.log_every,
            "train.eval_every": train_config.eval_every, "train.checkpoint_every": train_config.checkpoint_every,
            "data.batch_size": batch_size, "samples per batch (data.crop)": samples_per_batch}
  for name, value in counts.items():
    if value < 1:
      raise InputError(f"{name} is {value}; it must be at least 1")
  if not (math.isfinite(train_config.learning_rate) and train_config.learning_rate > 0):
    raise InputError(f"train.learning_rate is {train_config.learning_rate}; give a finite number > 0")
  if train_config.warmup_steps < 0:
    raise InputError(f"train.warmup_steps is {train_config.warmup_steps}; give 0 or more")
  if train_config.microbatches < 1 or batch_size % train_config.microbatches:
    raise InputError(f"train.microbatches is {train_config.microbatches}; give a divisor of data.batch_size "
                     f"({batch_size})")


def train(*, workdir, model_config, init_params, loss_fn, train_batch, eval_batches, train_config,
          samples_per_batch, batch_size, labels=None, loss_unit="sample", extra_eval=None):
  """Trains to `train_config.num_steps`, resuming from `workdir` if it holds a checkpoint.

  Args:
    workdir: run directory: checkpoints/, metrics.csv, TensorBoard events.
    model_config: JSON-able dict of the model's config; saved with every
      checkpoint and checked on resume.
    init_params: `key -> params`.
    loss_fn: `(params, batch, key, *, step, train) -> (loss nats, metrics)`
      (see `training.state.make_train_step`); evaluation calls it with
      `train=False` on batches whose `weight` marks padding rows (0), and the
      loss is the mean over rows of weight 1.
    train_batch: `step -> dict of numpy arrays`, the global batch of that step
      (a pure function of the step, so resumed runs see the same data).
    eval_batches: `() -> iterable of numpy batches` of the validation split;
      a batch's `weight` sum (else 1) weights its metrics in the mean.
    train_config: ConfigDict with num_steps, learning_rate, warmup_steps,
      weight_decay, clip_norm, microbatches (see `training.state.make_train_step`),
      log_every, eval_every, checkpoint_every, keep_checkpoints, seed.
    samples_per_batch: predicted samples per global batch (for samples/s).
    batch_size: global batch size (checked against the device count).
    labels: JSON-able names of the conditioning ids (e.g. {"speaker": [...]}) and
      what else inference needs of the training data, saved with every
      checkpoint for the commands that sample from it.
    loss_unit: what the loss is per ("sample", "image", "tag"); the loss in
      bits is logged as `bits_per_{loss_unit}`.
    extra_eval: optional `(params, step) -> {name: float}`, run at every
      evaluation and logged with the "eval/" prefix (e.g. what the teacher-
      forced loss cannot show: the voicing of free-running synthesis).

  Returns:
    The final TrainState.

  Raises:
    InputError: nonsense settings or a workdir that cannot be created (both
      before anything is written), a checkpoint from another model config, an
      unsplittable batch, or a non-finite loss (the last good checkpoint is kept).
    StoppedBySignal: SIGINT or SIGTERM arrived; the step it finished is
      checkpointed and the exception holds the state.
  """
  _check_settings(train_config, batch_size, samples_per_batch)
  sharding = Sharding()
  sharding.check_batch_size(batch_size)
  optimizer = state_lib.make_optimizer(train_config.learning_rate, train_config.num_steps,
                                       train_config.warmup_steps, train_config.weight_decay,
                                       train_config.clip_norm)

  def fresh_state():
    return state_lib.create_state(init_params(jax.random.key(train_config.seed)), optimizer, train_config.seed)

  # Compiled, and its memory checked, before anything is written: every step's batch has step 0's shapes.
  compile_start = time.perf_counter()
  abstract_state = jax.eval_shape(fresh_state)
  abstract_batch = jax.tree.map(lambda array: jax.ShapeDtypeStruct(array.shape, array.dtype), train_batch(0))
  train_step = memory.compile_within_memory(
      jax.jit(state_lib.make_train_step(loss_fn, optimizer, train_config.microbatches), donate_argnums=(0,),
              in_shardings=(sharding.replicated, sharding.data, sharding.replicated),
              out_shardings=(sharding.replicated, sharding.replicated)),
      (abstract_state, abstract_batch, jax.eval_shape(state_lib.step_key, abstract_state)),
      "a training step", "lower data.batch_size or data.crop")
  compile_seconds = time.perf_counter() - compile_start
  make_dir(workdir, "--workdir")
  with workdir_lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train_in_locked_workdir(
        workdir=workdir, model_config=model_config, fresh_state=fresh_state, abstract_state=abstract_state,
        train_step=train_step, compile_seconds=compile_seconds, loss_fn=loss_fn, sharding=sharding,
        train_batch=train_batch, eval_batches=eval_batches, train_config=train_config,
        samples_per_batch=samples_per_batch, labels=labels, loss_unit=loss_unit, extra_eval=extra_eval)


def _train_in_locked_workdir(*, workdir, model_config, fresh_state, abstract_state, train_step, compile_seconds,
                             loss_fn, sharding, train_batch, eval_batches, train_config, samples_per_batch, labels,
                             loss_unit, extra_eval):
  """The body of `train` once the workdir is locked (its arguments, plus the compiled step and its sharding).

  In a multi-process run every process trains and checkpoints (Orbax
  coordinates the saves); process 0 alone writes metrics, events and the
  config, shows progress and prints.
  """
  lead = jax.process_index() == 0
  say = print if lead else (lambda *args, **kwargs: None)
  checkpointer = Checkpointer(workdir, keep=train_config.keep_checkpoints, save_every=train_config.checkpoint_every)
  state, totals = checkpointer.restore_newest_intact(abstract_state, model_config)
  if state is None:
    if os.path.isdir(os.path.join(workdir, "unreadable_checkpoints")) and not checkpoint_steps(checkpointer.directory):
      say(f"no checkpoint in {checkpointer.directory} reads back; starting from step 0")
    state, totals = fresh_state(), {"runs": 0, "wall_s": 0.0}
  else:
    say(f"resuming from step {int(state.step)} in {checkpointer.directory}")
  if lead:
    save_json(os.path.join(workdir, "model_config.json"), model_config)
  state = jax.device_put(state, sharding.replicated)

  eval_step = jax.jit(state_lib.make_eval_step(loss_fn),
                      in_shardings=(sharding.replicated, sharding.replicated, sharding.data, sharding.replicated),
                      out_shardings=sharding.replicated)
  start = int(state.step)
  writer = MetricWriter(workdir, start, active=lead)
  eval_key = jax.random.key(train_config.seed + 1)

  def evaluate(step):
    metrics, weights = [], []
    for batch in eval_batches():
      metrics.append(eval_step(state.params, state.step, sharding.put_batch(batch), eval_key))
      weights.append(float(np.sum(batch["weight"])) if "weight" in batch else 1.0)
    if metrics:
      writer.write(step, _with_bits(_mean_metrics(jax.device_get(metrics), weights), loss_unit, "eval/"))
    if extra_eval is not None:
      writer.write(step, {f"eval/{name}": value for name, value in extra_eval(state.params, step).items()})

  progress = tqdm(total=train_config.num_steps, initial=start, desc="train", unit="step", dynamic_ncols=True,
                  disable=not lead)
  run_start = time.perf_counter()
  interval_start, interval_steps, done = run_start, 0, start
  healthy = (start, float(state_lib.parameter_norm(state.params)))  # (step, parameter norm) of the last good state
  saved_totals, disk_full, failed = totals, False, True
  try:
    with _StopRequest() as stop:
      for step in range(start, train_config.num_steps):
        batch = sharding.put_batch(train_batch(step))
        tic = time.perf_counter()
        state, metrics = train_step(state, batch, state_lib.step_key(state))
        metrics = jax.device_get(metrics)
        if step == start:
          writer.write(step + 1, {"compile_and_first_step_s": compile_seconds + time.perf_counter() - tic})
          interval_start, interval_steps = time.perf_counter(), 0
        else:
          interval_steps += 1
        _stop_if_diverging(metrics, step + 1, healthy, checkpointer)
        done = step + 1
        progress.update(1)
        progress.set_postfix(bits=f"{float(metrics['loss']) / math.log(2):.3f}")
        if done % train_config.log_every == 0 and interval_steps:
          elapsed = time.perf_counter() - interval_start
          writer.write(done, dict(_with_bits(metrics, loss_unit, "train/"),
                                  **{"train/samples_per_s": samples_per_batch * interval_steps / elapsed,
                                     "train/step_ms": 1000.0 * elapsed / interval_steps}))
          interval_start, interval_steps = time.perf_counter(), 0
        side_start = time.perf_counter()
        if done % train_config.eval_every == 0 or done == train_config.num_steps:
          evaluate(done)
        run_totals = {"runs": totals["runs"] + 1, "wall_s": totals["wall_s"] + time.perf_counter() - run_start}
        if checkpointer.save(done, state, model_config, labels or {}, totals=run_totals,
                             force=done == train_config.num_steps or bool(stop.requested)):
          writer.flush()
          healthy, saved_totals = (done, float(metrics["param_norm"])), run_totals
        interval_start += time.perf_counter() - side_start  # Throughput counts training steps, not these.
        if stop.requested:
          say(f"\nstopped by signal at step {done}; checkpoint saved, rerun the same command to resume")
          break
    checkpointer.wait()  # an asynchronous save's failure surfaces here
    failed = False
  except Exception as error:
    if not is_disk_full(error):
      raise
    disk_full = True
    with contextlib.suppress(Exception):
      checkpointer.wait()
    good = checkpointer.latest_step()
    raise InputError(f"no space left on device in {workdir} at step {done}; "
                     + ("no checkpoint was saved" if good is None else f"the last intact checkpoint is step {good}")
                     + "; free some space and rerun the same command to resume") from None
  finally:
    progress.close()
    # On success the checkpointer has been waited for; on a failure, the first error is the one to report.
    quiet = contextlib.suppress(Exception) if failed else contextlib.nullcontext()
    with quiet:
      checkpointer.wait()
    newest = checkpointer.latest_step()
    with quiet:
      checkpointer.close()
    with quiet:
      writer.close()
    if disk_full:
      checkpointer.remove_unfinished()
    say(f"this run: {done - start} steps in {time.perf_counter() - run_start:.0f} s; {workdir}: step "
          f"{newest} reached in {saved_totals['wall_s']:.0f} s over {saved_totals['runs']} "
          "run(s), by its newest checkpoint")
  if stop.requested:
    raise StoppedBySignal(stop.requested, state)
  return state


def _stop_if_diverging(metrics, step, healthy, checkpointer):
  """Raises InputError when the loss or gradient is not finite, or the parameters blew up since `healthy`.

  Checked after every step and before its checkpoint, so every checkpoint
  kept was taken before the divergence began; the message names the newest.
  """
  loss, grad_norm, norm = (float(metrics[name]) for name in ("loss", "grad_norm", "param_norm"))
  healthy_step, healthy_norm = healthy
  if not (math.isfinite(loss) and math.isfinite(grad_norm)):
    problem = f"loss became {loss} (gradient norm {grad_norm:.3g})"
  elif not norm <= BLOWUP_FACTOR * healthy_norm:  # also true for an infinite or NaN norm
    problem = f"the parameter norm grew from {healthy_norm:.3g} at step {healthy_step} to {norm:.3g}"
  else:
    return
  checkpointer.wait()
  good = checkpointer.latest_step()
  kept = ("no checkpoint was saved before it" if good is None
          else f"the last good checkpoint is step {good} in {checkpointer.directory}")
  raise InputError(f"{problem} at step {step}; stopped, {kept}; lower the learning rate and rerun")
