"""The shared training loop on a conditional sine task: learning, resume, devices."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import dsp
from common.errors import InputError, StoppedBySignal
from tests.conftest import REPO_ROOT
from training import metrics
from training.checkpoint import checkpoint_totals, load_model_checkpoint, locate_checkpoint
from training import state as state_lib
from training.loop import train
from wavenet import loss as loss_lib
from wavenet.model import WaveNet

SINE_MODEL = dict(num_stacks=1, layers_per_stack=4, residual_channels=16, gate_channels=16, skip_channels=32,
                  head_channels=32, global_categories=(("speaker", 2),))
FREQUENCIES = (0.02, 0.09)  # cycles per sample of each "speaker"
CROP = 48
BATCH = 8


def sine_batch(step, batch=BATCH, model=WaveNet(**SINE_MODEL)):
  """Two speakers, each a sine of its own frequency at a random phase: a pure function of step."""
  rng = np.random.default_rng([7, step])
  speaker = rng.integers(0, 2, batch).astype(np.int32)
  phase = rng.uniform(0, 2 * np.pi, batch)
  t = np.arange(model.receptive_field + CROP)
  audio = 0.8 * np.sin(2 * np.pi * np.array(FREQUENCIES)[speaker][:, None] * t + phase[:, None])
  return {"codes": dsp.quantize(audio.astype(np.float32)), "speaker": speaker}


def train_config(num_steps, **overrides):
  config = ml_collections.ConfigDict(dict(
      num_steps=num_steps, learning_rate=3e-3, warmup_steps=10, weight_decay=0.0, clip_norm=1.0, microbatches=1,
      log_every=10, eval_every=50, checkpoint_every=1000, keep_checkpoints=2, seed=0))
  config.update(overrides)
  return config


def run(workdir, num_steps, batch_fn=sine_batch, model_config=SINE_MODEL, **overrides):
  model = WaveNet(**model_config)
  return train(workdir=str(workdir), model_config=json.loads(json.dumps(model_config)),
               init_params=lambda key: model.init(key, jnp.zeros((1, 64), jnp.int32)),
               loss_fn=loss_lib.make_loss_fn(model, ("speaker",)), train_batch=batch_fn,
               eval_batches=lambda: [sine_batch(10_000 + i) for i in range(2)],
               train_config=train_config(num_steps, **overrides), samples_per_batch=BATCH * CROP,
               batch_size=BATCH, labels={"speaker": ["low", "high"]})


def nll(model, params, batch):
  return float(-loss_lib.log_probs(model, params, batch["codes"], batch["codes"], {"speaker": batch["speaker"]}).mean())


@pytest.mark.slow
def test_sine_task_learns_each_speakers_sine(tmp_path):
  model = WaveNet(**SINE_MODEL)
  state = run(tmp_path, 300)
  batch = sine_batch(20_000, batch=32)
  initial = nll(model, model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32)), batch)
  trained = nll(model, state.params, batch)
  swapped = nll(model, state.params, dict(batch, speaker=1 - batch["speaker"]))
  assert trained < initial / 3, (initial, trained)
  assert swapped > trained + 1.0, (trained, swapped)
  logits = model.apply(state.params, batch["codes"][:, :-1], {"speaker": batch["speaker"]}).head
  predicted = dsp.dequantize(np.asarray(jnp.argmax(logits, -1)))
  actual = dsp.dequantize(batch["codes"][:, model.receptive_field:])
  assert np.corrcoef(predicted.ravel(), actual.ravel())[0, 1] > 0.95
  rows = (tmp_path / "metrics.csv").read_text().splitlines()
  names = {row.split(",")[1] for row in rows[1:]}
  assert {"train/loss", "train/bits_per_sample", "train/grad_norm", "train/samples_per_s", "eval/loss",
          "eval/bits_per_sample"} <= names
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))


@pytest.mark.slow
def test_resume_after_a_signal_is_bit_for_bit(tmp_path):
  straight = run(tmp_path / "straight", 20)

  def interrupting_batch(step):
    if step == 9:
      os.kill(os.getpid(), signal.SIGTERM)
    return sine_batch(step)

  with pytest.raises(StoppedBySignal) as stopped:
    run(tmp_path / "resumed", 20, batch_fn=interrupting_batch)
  assert stopped.value.signum == signal.SIGTERM and int(stopped.value.state.step) == 10
  resumed = run(tmp_path / "resumed", 20)
  assert int(resumed.step) == 20
  for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  totals = checkpoint_totals(tmp_path / "resumed")
  assert (totals["runs"], totals["step"]) == (2, 20) and totals["wall_s"] > 0
  config, params, labels = load_model_checkpoint(tmp_path / "resumed")
  assert config["layers_per_stack"] == 4 and labels == {"speaker": ["low", "high"]}
  np.testing.assert_array_equal(params["params"]["skip_kernel"], np.asarray(resumed.params["params"]["skip_kernel"]))


@pytest.mark.slow
def test_validation_metrics_weight_each_batch_by_its_real_rows(tmp_path):
  def loss_fn(params, batch, key, *, step, train):
    del key, step, train
    weight = batch.get("weight", jnp.ones_like(batch["value"]))
    loss = jnp.sum(batch["value"] * weight) / jnp.sum(weight) + 0.0 * params["w"]
    return loss, {}

  full = {"value": np.ones(4, np.float32), "weight": np.ones(4, np.float32)}
  padded = {"value": np.full(4, 3.0, np.float32), "weight": np.array([1, 0, 0, 0], np.float32)}
  train(workdir=str(tmp_path), model_config={"kind": "constant"}, init_params=lambda key: {"w": jnp.zeros(())},
        loss_fn=loss_fn, train_batch=lambda step: {"value": np.zeros(4, np.float32)},
        eval_batches=lambda: [full, padded], train_config=train_config(1, eval_every=1), samples_per_batch=4,
        batch_size=4, loss_unit="row")
  evals = {name: value for _, name, value in metrics.read_metrics(tmp_path) if name.startswith("eval/")}
  assert evals["eval/loss"] == pytest.approx((4 * 1.0 + 1 * 3.0) / 5)
  assert evals["eval/bits_per_row"] == pytest.approx(1.4 / np.log(2.0))


def test_the_loss_is_told_its_step_and_mode_and_neither_travels_in_the_batch(tmp_path):
  def loss_fn(params, batch, key, *, step, train):
    del key
    assert set(batch) <= {"value", "weight"}
    return jnp.mean(batch["value"]) + 0.0 * params["w"], {"step_seen": step, "train_seen": float(train)}

  batch = {"value": np.zeros(4, np.float32)}
  train(workdir=str(tmp_path), model_config={"kind": "constant"}, init_params=lambda key: {"w": jnp.zeros(())},
        loss_fn=loss_fn, train_batch=lambda step: batch, eval_batches=lambda: [dict(batch, weight=np.ones(4))],
        train_config=train_config(4, log_every=1, eval_every=2), samples_per_batch=4, batch_size=4)
  rows = {(name, step): value for step, name, value in metrics.read_metrics(tmp_path)}
  assert [rows[("train/step_seen", step)] for step in (2, 3, 4)] == [1, 2, 3]  # the step being taken, from 0
  assert {rows[("train/train_seen", step)] for step in (2, 3, 4)} == {1.0}
  assert (rows[("eval/train_seen", 2)], rows[("eval/step_seen", 4)]) == (0.0, 4)


@pytest.mark.slow
def test_checkpoints_fall_on_the_interval_and_the_last_step_only(tmp_path):
  run(tmp_path, 7, checkpoint_every=3, keep_checkpoints=5)
  assert sorted(int(name) for name in os.listdir(tmp_path / "checkpoints") if name.isdigit()) == [3, 6, 7]


def test_locate_checkpoint_resolves_workdir_checkpoints_folder_and_step_folder(tmp_path):
  for step in (3, 10):
    os.makedirs(tmp_path / "run" / "checkpoints" / str(step) / "state")
  os.makedirs(tmp_path / "run" / "checkpoints" / "11.orbax-checkpoint-tmp-0")  # An unfinished save.
  run, checkpoints = str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints")
  newest = (run, os.path.join(checkpoints, "10"), 10)
  assert locate_checkpoint(run) == newest
  assert locate_checkpoint(checkpoints) == newest
  assert locate_checkpoint(os.path.join(checkpoints, "3")) == (run, os.path.join(checkpoints, "3"), 3)
  with pytest.raises(InputError, match="holds no checkpoint"):
    locate_checkpoint(str(tmp_path))
  with pytest.raises(InputError, match="no such checkpoint directory"):
    locate_checkpoint(str(tmp_path / "missing"))


@pytest.mark.slow
def test_checkpoint_of_another_config_is_refused(tmp_path):
  run(tmp_path, 2)
  with pytest.raises(InputError, match="another model config.*residual_channels"):
    run(tmp_path, 4, model_config=dict(SINE_MODEL, residual_channels=8))


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  def poisoned_batch(step):
    batch = sine_batch(step)
    if step >= 6:
      batch["codes"] = np.full_like(batch["codes"], -(2**20))  # Out-of-range targets make the loss NaN.
    return batch

  with pytest.raises(InputError, match="at step 7.*last good checkpoint is step 5"):
    run(tmp_path, 10, batch_fn=poisoned_batch, checkpoint_every=5)
  with pytest.raises(InputError, match="at step 7.*no checkpoint was saved before it"):
    run(tmp_path / "early", 10, batch_fn=poisoned_batch, checkpoint_every=100)


@pytest.mark.parametrize("overrides,message", [
    (dict(num_steps=0), "train.num_steps is 0"),
    (dict(eval_every=0), "train.eval_every is 0"),
    (dict(learning_rate=float("nan")), "train.learning_rate is nan"),
    (dict(learning_rate=-1.0), "train.learning_rate is -1.0"),
    (dict(warmup_steps=-1), "train.warmup_steps is -1"),
    (dict(microbatches=3), r"train.microbatches is 3; give a divisor of data.batch_size \(8\)"),
])
def test_settings_that_cannot_train_are_refused_before_anything_is_written(tmp_path, overrides, message):
  workdir = tmp_path / "run"
  with pytest.raises(InputError, match=message):
    run(workdir, overrides.pop("num_steps", 2), **overrides)
  assert not workdir.exists()


def test_microbatches_give_the_step_of_the_whole_batch_and_each_group_its_own_key():
  model = WaveNet(**SINE_MODEL)
  params = model.init(jax.random.key(0), jnp.zeros((1, model.receptive_field + 1), jnp.int32))
  likelihood = loss_lib.make_loss_fn(model, ("speaker",))

  def loss_fn(params, batch, key, *, step, train):
    loss, _ = likelihood(params, batch, key, step=step, train=train)
    return loss, {"draw": jax.random.uniform(key)}

  optimizer = optax.sgd(1.0)  # The update is minus the gradient, which the groups must reproduce.
  state = state_lib.create_state(params, optimizer, 0)
  batch, key = sine_batch(0), jax.random.key(3)
  steps = {groups: jax.jit(state_lib.make_train_step(loss_fn, optimizer, groups))(state, batch, key)
           for groups in (1, 2, 8)}
  (whole_state, whole), (halves_state, halves), (rows_state, rows) = steps.values()
  for other_state, other in ((halves_state, halves), (rows_state, rows)):
    assert float(other["loss"]) == pytest.approx(float(whole["loss"]), rel=1e-6)
    assert float(other["grad_norm"]) == pytest.approx(float(whole["grad_norm"]), rel=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8), other_state.params,
                 whole_state.params)
  assert float(whole["draw"]) == pytest.approx(float(jax.random.uniform(key)))
  assert float(halves["draw"]) == pytest.approx(float(jax.vmap(jax.random.uniform)(jax.random.split(key, 2)).mean()))
  # The loss of rows 0, 2, 4, 6 alone (group 0 of two) differs from the mean, so the groups did split the rows.
  group_loss, _ = likelihood(params, jax.tree.map(lambda rows: rows[::2], batch), key, step=0, train=True)
  assert abs(float(group_loss) - float(whole["loss"])) > 1e-4


def test_a_workdir_that_cannot_be_created_is_one_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(InputError, match="--workdir .*cannot create it"):
    run(tmp_path / "file" / "run", 2)


@pytest.mark.slow
def test_two_devices_give_the_loss_of_one():
  script = (
      "import sys; sys.path.insert(0, '.');"
      "import jax, numpy as np; from tests.test_training import run; import tempfile;"
      "state = run(tempfile.mkdtemp(), 3);"
      "print(jax.device_count(), np.asarray(state.params['params']['skip_kernel']).sum())")
  results = []
  for devices in (1, 2):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    output = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT)
    count, checksum = output.stdout.split()[-2:]
    assert int(count) == devices
    results.append(float(checksum))
  assert results[0] == pytest.approx(results[1], rel=1e-5, abs=1e-5)


def test_a_training_command_stopped_by_sigterm_saves_and_exits_143(voices_dir, tmp_path):
  workdir = tmp_path / "run"
  process = subprocess.Popen([sys.executable, "-m", "experiments.train_frame_prior", "--config",
                              "experiments/configs/frame_prior_voices.py:smoke", "--workdir", str(workdir),
                              f"--config.data.data_dir={voices_dir}", "--config.train.num_steps=100000"],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while not (workdir / "checkpoints").is_dir() or not os.listdir(workdir / "checkpoints"):
    assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-2000:]
    time.sleep(0.5)
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=300)
  assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
  assert "stopped by signal at step" in out and "Traceback" not in err
  stopped_at = int(out.split("stopped by signal at step ")[1].split(";")[0])
  assert str(stopped_at) in os.listdir(workdir / "checkpoints")


TWO_PROCESS_RUN = """
import json, sys
from common import cli
cli.maybe_initialize_distributed()
import jax, numpy as np
from tests.test_reliability import quadratic_run
rows = lambda step: {"target": np.repeat(np.arange(1.0, 5.0, dtype=np.float32)[:, None] + step % 3, 4, axis=1)}
state = quadratic_run(sys.argv[1], 4, batch_fn=rows, checkpoint_every=2)
print(json.dumps([jax.process_count(), jax.device_count(), np.asarray(jax.device_get(state.params["w"])).tolist()]))
"""


@pytest.mark.slow
def test_two_processes_train_data_parallel_like_one_and_only_process_0_writes(tmp_path):
  def launch(workdir, count, port):
    environment = [dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES=str(count),
                        JAX_PROCESS_ID=str(index)) if count > 1 else dict(os.environ) for index in range(count)]
    processes = [subprocess.Popen([sys.executable, "-c", TWO_PROCESS_RUN, str(workdir)], cwd=REPO_ROOT,
                                  env=environment[index], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for index in range(count)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

  (single,) = launch(tmp_path / "one", 1, None)
  two = launch(tmp_path / "two", 2, 12000 + os.getpid() % 20000)
  assert single[:2] == [1, 1] and [run[:2] for run in two] == [[2, 2], [2, 2]]
  for run in two:  # each process holds two of the four rows; the mean loss and its gradient span all four
    np.testing.assert_allclose(run[2], single[2], rtol=1e-6)
  written = sorted(os.listdir(tmp_path / "two"))
  assert len([name for name in written if name.startswith("events.out.tfevents")]) == 1
  losses = [step for step, name, _ in metrics.read_metrics(tmp_path / "two") if name == "train/loss"]
  assert losses == [2, 3, 4]  # once each, from process 0 (a run's first step is not logged)
  assert checkpoint_steps_of(tmp_path / "two") == [2, 4]


def checkpoint_steps_of(workdir):
  return sorted(int(name) for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.isdigit())
