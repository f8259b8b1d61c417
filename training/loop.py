"""The one training loop: sharded jitted steps, evaluation, checkpoints, metrics.

Data parallel over every device of every process: the batch axis is split
over a 1-D mesh named "batch", the state is replicated. The same code runs on
one CPU, eight GPUs or a TPU slice; launched with JAX_COORDINATOR_ADDRESS set,
each process feeds its own rows of the global batch.
"""

import math
import os
import signal
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from dsp.errors import InputError, StoppedBySignal
from dsp.files import make_dir, save_json
from training import state as state_lib
from training.checkpoint import Checkpointer
from training.metrics import MetricWriter, run_totals


def maybe_initialize_distributed():
  """Joins a multi-process run when launched as one (JAX_COORDINATOR_ADDRESS set)."""
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    jax.distributed.initialize()


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


def train(*, workdir, model_config, init_params, loss_fn, train_batch, eval_batches, train_config,
          samples_per_batch, batch_size, labels=None, loss_unit="sample", extra_eval=None):
  """Trains to `train_config.num_steps`, resuming from `workdir` if it holds a checkpoint.

  Args:
    workdir: run directory: checkpoints/, metrics.csv, TensorBoard events.
    model_config: JSON-able dict of the model's config; saved with every
      checkpoint and checked on resume.
    init_params: `key -> params`.
    loss_fn: `(params, batch, key) -> (loss nats, metrics)`; on a batch with
      `weight` (evaluation) the loss is the mean over rows of weight 1.
    train_batch: `step -> dict of numpy arrays`, the global batch of that step
      (a pure function of the step, so resumed runs see the same data).
    eval_batches: `() -> iterable of numpy batches` of the validation split;
      a batch's `weight` sum (else 1) weights its metrics in the mean.
    train_config: ConfigDict with num_steps, learning_rate, warmup_steps,
      weight_decay, clip_norm, log_every, eval_every, checkpoint_every,
      keep_checkpoints, seed.
    samples_per_batch: predicted samples per global batch (for samples/s).
    batch_size: global batch size (checked against the device count).
    labels: JSON-able names of the conditioning ids (e.g. {"speaker": [...]}),
      saved with every checkpoint for the commands that sample from it.
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
  make_dir(workdir, "--workdir")
  sharding = Sharding()
  sharding.check_batch_size(batch_size)
  optimizer = state_lib.make_optimizer(train_config.learning_rate, train_config.num_steps,
                                       train_config.warmup_steps, train_config.weight_decay,
                                       train_config.clip_norm)

  def fresh_state():
    return state_lib.create_state(init_params(jax.random.key(train_config.seed)), optimizer, train_config.seed)

  checkpointer = Checkpointer(workdir, keep=train_config.keep_checkpoints, save_every=train_config.checkpoint_every)
  if checkpointer.latest_step() is not None:
    state = checkpointer.restore(jax.eval_shape(fresh_state), model_config)
    print(f"resuming from step {int(state.step)} in {checkpointer.directory}")
  else:
    state = fresh_state()
  save_json(os.path.join(workdir, "model_config.json"), model_config)
  state = jax.device_put(state, sharding.replicated)

  train_step = jax.jit(state_lib.make_train_step(loss_fn, optimizer), donate_argnums=(0,),
                       in_shardings=(sharding.replicated, sharding.data, sharding.replicated),
                       out_shardings=(sharding.replicated, sharding.replicated))
  eval_step = jax.jit(state_lib.make_eval_step(loss_fn),
                      in_shardings=(sharding.replicated, sharding.data, sharding.replicated),
                      out_shardings=sharding.replicated)
  writer = MetricWriter(workdir)
  eval_key = jax.random.key(train_config.seed + 1)

  def evaluate(step):
    metrics, weights = [], []
    for batch in eval_batches():
      metrics.append(eval_step(state.params, sharding.put_batch(batch), eval_key))
      weights.append(float(np.sum(batch["weight"])) if "weight" in batch else 1.0)
    if metrics:
      writer.write(step, _with_bits(_mean_metrics(jax.device_get(metrics), weights), loss_unit, "eval/"))
    if extra_eval is not None:
      writer.write(step, {f"eval/{name}": value for name, value in extra_eval(state.params, step).items()})

  start = int(state.step)
  progress = tqdm(total=train_config.num_steps, initial=start, desc="train", unit="step", dynamic_ncols=True)
  run_start = time.perf_counter()
  interval_start, interval_steps, done = run_start, 0, start
  try:
    with _StopRequest() as stop:
      for step in range(start, train_config.num_steps):
        batch = sharding.put_batch(train_batch(step))
        tic = time.perf_counter()
        state, metrics = train_step(state, batch, state_lib.step_key(state))
        metrics = jax.device_get(metrics)
        if step == start:
          writer.write(step + 1, {"compile_and_first_step_s": time.perf_counter() - tic})
          interval_start, interval_steps = time.perf_counter(), 0
        else:
          interval_steps += 1
        if not (math.isfinite(float(metrics["loss"])) and math.isfinite(float(metrics["grad_norm"]))):
          checkpointer.wait()
          good = checkpointer.latest_step()
          kept = ("no checkpoint was saved before it" if good is None
                  else f"the last good checkpoint is step {good} in {checkpointer.directory}")
          raise InputError(f"loss became {float(metrics['loss'])} at step {step + 1}; stopped, {kept}; "
                           "lower the learning rate and rerun")
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
        checkpointer.save(done, state, model_config, labels or {}, force=done == train_config.num_steps or bool(stop.requested))
        interval_start += time.perf_counter() - side_start  # Throughput counts training steps, not these.
        if stop.requested:
          print(f"\nstopped by signal at step {done}; checkpoint saved, rerun the same command to resume")
          break
  finally:
    progress.close()
    checkpointer.wait()
    checkpointer.close()
    writer.write(done, {"run/wall_s": time.perf_counter() - run_start, "run/steps": done - start})
    writer.close()
    totals = run_totals(workdir)
    print(f"this run: {done - start} steps in {time.perf_counter() - run_start:.0f} s; {workdir}: "
          f"{totals['steps']} steps in {totals['wall_s']:.0f} s over {totals['runs']} timed run(s)")
  if stop.requested:
    raise StoppedBySignal(stop.requested, state)
  return state
