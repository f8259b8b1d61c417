"""What a crash, a second run, a damaged checkpoint, a full disk or a diverging run leaves behind (#22).

Each case runs the real training loop on a four-parameter quadratic, so the
default tier can afford them; the full-disk case on a real tmpfs is slow-tier.
"""

import contextlib
import errno
import json
import os
import shutil
import struct
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from common import cli
from common.errors import InputError
from tests.conftest import REPO_ROOT
from training import metrics as metrics_lib
from training.checkpoint import checkpoint_steps, checkpoint_totals, Checkpointer, load_model_checkpoint
from training.loop import train, workdir_lock

TARGET = 3.0


def quadratic_run(workdir, num_steps, batch_fn=None, **overrides):
  """Trains w [4] from ones toward TARGET by mean squared error; returns the final TrainState."""
  config = ml_collections.ConfigDict(dict(
      num_steps=num_steps, learning_rate=0.1, warmup_steps=0, weight_decay=0.0, clip_norm=1e9, microbatches=1,
      log_every=1, eval_every=1000, checkpoint_every=2, keep_checkpoints=3, seed=0))
  config.update(overrides)

  def loss_fn(params, batch, key, *, step, train):
    del key, step, train
    return jnp.mean(jnp.square(params["w"][None] - batch["target"])), {}

  return train(workdir=str(workdir), model_config={"kind": "quadratic"}, init_params=lambda key: {"w": jnp.ones(4)},
               loss_fn=loss_fn, train_batch=batch_fn or (lambda step: {"target": np.full((4, 4), TARGET, np.float32)}),
               eval_batches=lambda: [], train_config=config, samples_per_batch=4, batch_size=4)


def newest_step_folder(workdir):
  return os.path.join(workdir, "checkpoints", str(checkpoint_steps(os.path.join(workdir, "checkpoints"))[-1]))


def root_node(step_folder):
  """The OCDBT root b-tree file of a checkpoint's state (what every read goes through)."""
  folder = os.path.join(step_folder, "state", "d")
  return os.path.join(folder, os.listdir(folder)[0])


def truncate(step_folder):
  path = root_node(step_folder)
  os.truncate(path, os.path.getsize(path) // 2)


def flip_a_byte(step_folder):
  path = root_node(step_folder)
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0x01
  open(path, "wb").write(bytes(data))


def delete_data(step_folder):
  os.remove(root_node(step_folder))


def delete_metadata(step_folder):
  os.remove(os.path.join(step_folder, "state", "_METADATA"))


def empty_folder(step_folder):
  shutil.rmtree(step_folder)
  os.makedirs(step_folder)


DAMAGES = [truncate, flip_a_byte, delete_data, delete_metadata, empty_folder]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__)
def test_a_damaged_checkpoint_is_one_line_and_training_falls_back_to_the_previous(tmp_path, capfd, damage):
  quadratic_run(tmp_path, 4)
  damage(str(tmp_path / "checkpoints" / "4"))
  with pytest.raises(InputError, match=r"checkpoints/4: unreadable checkpoint \(.*\); pass an older step's folder "
                     r"\(.*checkpoints/2\)") as error:
    load_model_checkpoint(tmp_path)
  assert "\n" not in str(error.value)
  capfd.readouterr()
  state = quadratic_run(tmp_path, 6)
  out, err = capfd.readouterr()
  assert "checkpoint step 4 is unreadable" in out and "resuming from step 2" in out
  assert "Traceback" not in err and "Event loop is closed" not in err
  assert int(state.step) == 6 and checkpoint_steps(tmp_path / "checkpoints") == [2, 4, 6]
  assert os.path.isdir(tmp_path / "unreadable_checkpoints" / "4")


def test_a_checkpoint_whose_arrays_differ_from_their_digest_is_refused(tmp_path):
  quadratic_run(tmp_path, 2)
  step_folder = tmp_path / "checkpoints" / "2"
  config_path = step_folder / "config" / "metadata"
  config = json.loads(config_path.read_text())
  config["digest"]["params"] = "0" * 64  # as if a data byte had flipped that the format does not checksum
  config_path.write_text(json.dumps(config))
  with pytest.raises(InputError, match="differ from the digest saved with them"):
    load_model_checkpoint(tmp_path)


def test_inference_reads_only_the_parameters(tmp_path):
  quadratic_run(tmp_path, 2)
  metadata_path = tmp_path / "checkpoints" / "2" / "state" / "_METADATA"
  metadata = json.loads(metadata_path.read_text())
  for key in list(metadata["tree_metadata"]):
    if key.startswith("('opt_state'"):  # the optimiser moments now point at arrays that are not there
      metadata["tree_metadata"][key.replace("opt_state", "lost_state")] = metadata["tree_metadata"].pop(key)
  metadata_path.write_text(json.dumps(metadata))
  _, params, _ = load_model_checkpoint(tmp_path)
  assert params["w"].shape == (4,) and np.all(np.isfinite(params["w"]))


def test_a_workdir_in_use_is_refused_naming_the_holder(tmp_path):
  with workdir_lock(str(tmp_path)):
    with pytest.raises(InputError, match=rf"in use by another training run \(pid {os.getpid()}\)"):
      quadratic_run(tmp_path, 2)
  assert not os.path.exists(tmp_path / "checkpoints")
  assert int(quadratic_run(tmp_path, 2).step) == 2  # released with its holder


def test_the_lock_dies_with_its_holder_even_under_kill_9(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, time, sys; f = open(sys.argv[1], 'a+'); "
                             "fcntl.flock(f, fcntl.LOCK_EX); f.write(str(os.getpid())); f.flush(); "
                             "print('locked', flush=True); time.sleep(60)", str(tmp_path / ".lock")],
                            stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "locked"
  with pytest.raises(InputError, match=rf"pid {holder.pid}"):
    quadratic_run(tmp_path, 2)
  holder.kill()
  holder.wait()
  assert int(quadratic_run(tmp_path, 2).step) == 2


def test_metrics_csv_survives_a_torn_line_a_stray_header_and_replayed_steps(tmp_path):
  quadratic_run(tmp_path, 6, checkpoint_every=3)
  shutil.rmtree(tmp_path / "checkpoints" / "6")  # as if killed after logging step 6 but before its checkpoint
  with open(tmp_path / "metrics.csv", "a") as file:
    file.write("step,name,value\n7,train/lo")  # a second run's header and a line torn by kill -9
  quadratic_run(tmp_path, 8, checkpoint_every=3)
  rows = metrics_lib.read_metrics(tmp_path)
  losses = [step for step, name, _ in rows if name == "train/loss"]
  # Steps 5-6 logged once, by the run that resumed from step 3 (a run's first step, its compilation, is not logged).
  assert losses == [2, 3, 5, 6, 7, 8]
  lines = (tmp_path / "metrics.csv").read_text().splitlines()
  assert lines[0] == "step,name,value" and lines.count("step,name,value") == 1


def event_steps(workdir, tag):
  """{event file: [steps of `tag`'s scalars]} read straight from the TFRecord files on disk."""
  found = {}
  for name in sorted(os.listdir(workdir)):
    if not name.startswith("events.out.tfevents"):
      continue
    data, position, steps = open(os.path.join(workdir, name), "rb").read(), 0, []
    while position + 12 <= len(data):
      length = struct.unpack("<Q", data[position:position + 8])[0]
      event = event_pb2.Event.FromString(data[position + 12:position + 12 + length])
      position += 12 + length + 4
      steps += [event.step for value in event.summary.value if value.tag == tag]
      if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
        steps.append(("purge", event.step))
    found[name] = steps
  return found


def test_events_are_on_disk_at_every_checkpoint_and_a_resume_purges_replayed_steps(tmp_path):
  seen = {}

  def peeking_batch(step):
    if step == 5:  # checkpoints at steps 2 and 4 have been taken; the event file is still open
      seen.update(event_steps(tmp_path, "train/loss"))
    return {"target": np.full((4, 4), TARGET, np.float32)}

  quadratic_run(tmp_path, 6, batch_fn=peeking_batch)
  (only,) = seen.values()
  assert set(range(2, 5)) <= set(only)  # (a run's first step, its compilation, is not logged)
  shutil.rmtree(tmp_path / "checkpoints" / "6")
  quadratic_run(tmp_path, 6)
  newest = list(event_steps(tmp_path, "train/loss").values())[-1]
  assert newest == [("purge", 5), 6]


def test_run_totals_come_from_the_checkpoint_so_a_crash_loses_at_most_one_interval(tmp_path):
  def crashing_batch(step):
    if step == 4:
      raise RuntimeError("power cut")
    return {"target": np.full((4, 4), TARGET, np.float32)}

  with pytest.raises(RuntimeError, match="power cut"):
    quadratic_run(tmp_path, 6, batch_fn=crashing_batch, checkpoint_every=3)
  first = checkpoint_totals(tmp_path)
  assert (first["step"], first["runs"]) == (3, 1) and first["wall_s"] > 0
  quadratic_run(tmp_path, 6, checkpoint_every=3)
  second = checkpoint_totals(tmp_path)
  assert (second["step"], second["runs"]) == (6, 2) and second["wall_s"] > first["wall_s"]


def test_a_diverging_run_keeps_only_checkpoints_from_before_the_blowup(tmp_path):
  quadratic_run(tmp_path, 2, checkpoint_every=1)
  with pytest.raises(InputError, match=r"the parameter norm grew from .* at step 2 to .* at step 3; stopped, the "
                     r"last good checkpoint is step 2 in .*; lower the learning rate"):
    quadratic_run(tmp_path, 6, checkpoint_every=1, learning_rate=1e30)
  assert checkpoint_steps(tmp_path / "checkpoints") == [1, 2]
  state = quadratic_run(tmp_path, 40, checkpoint_every=1)  # the advice works: resume with a sane rate
  assert int(state.step) == 40 and np.all(np.abs(np.asarray(state.params["w"]) - TARGET) < 1.0)


def test_a_non_finite_loss_names_the_last_good_checkpoint(tmp_path):
  def poisoned_batch(step):
    return {"target": np.full((4, 4), np.nan if step >= 3 else TARGET, np.float32)}

  with pytest.raises(InputError, match=r"loss became nan .* at step 4; stopped, the last good checkpoint is step 2"):
    quadratic_run(tmp_path, 6, batch_fn=poisoned_batch)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_intact_one(tmp_path, monkeypatch):
  save = Checkpointer.save

  def failing_save(self, step, *args, **kwargs):
    if step == 4:
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, step, *args, **kwargs)

  monkeypatch.setattr(Checkpointer, "save", failing_save)
  with pytest.raises(InputError, match=r"no space left on device in .* at step 4; the last intact checkpoint is "
                     r"step 2; free some space and rerun"):
    quadratic_run(tmp_path, 6)
  assert checkpoint_steps(tmp_path / "checkpoints") == [2]


@contextlib.contextmanager
def tiny_tmpfs(path, size):
  """A tmpfs of `size` mounted at `path` (skips the test where mounting is not allowed)."""
  os.makedirs(path)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                    capture_output=True).returncode:
    pytest.skip("mounting a tmpfs needs root (CI and the dev machine have it)")
  try:
    yield path
  finally:
    subprocess.run(["umount", str(path)], check=True)


@pytest.mark.slow
def test_a_really_full_disk_stops_training_in_one_line_with_no_unfinished_save_left(tmp_path):
  command = ("import sys; from common import cli; from tests.test_reliability import quadratic_run; "
             "cli.run(lambda argv: quadratic_run(argv[0], 10_000, checkpoint_every=1, keep_checkpoints=1000))")
  with tiny_tmpfs(tmp_path / "small", "400k") as small:
    done = subprocess.run([sys.executable, "-c", command, str(small / "run")], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    errors = [line for line in done.stderr.replace("\r", "\n").splitlines() if "error" in line.lower()]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert errors[0].startswith("error: no space left on device in ")
    good = int(errors[0].split("the last intact checkpoint is step ")[1].split(";")[0])
    assert not [name for name in os.listdir(small / "run" / "checkpoints") if "tmp" in name]
    _, params, _ = load_model_checkpoint(small / "run" / "checkpoints" / str(good))
    assert np.all(np.isfinite(params["w"]))


def test_outputs_appear_together_on_success(tmp_path):
  with cli.output_dir(str(tmp_path / "out")) as staging:
    for name in ("a.wav", "a.png"):
      open(os.path.join(staging, name), "w").close()
    assert not os.path.exists(tmp_path / "out")  # nothing is visible before the command finishes
  assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "a.wav"]
  assert os.listdir(tmp_path) == ["out"]  # no staging folder left beside it


def test_outputs_replace_their_namesakes_in_an_existing_folder(tmp_path):
  os.makedirs(tmp_path / "out" / "pair_0")
  (tmp_path / "out" / "keep.txt").write_text("mine")
  (tmp_path / "out" / "a.wav").write_text("old")
  (tmp_path / "out" / "pair_0" / "old.wav").write_text("old")
  with cli.output_dir(str(tmp_path / "out")) as staging:
    (tmp_path / staging / "a.wav").write_text("new")
    os.makedirs(os.path.join(staging, "pair_0"))
  assert (tmp_path / "out" / "a.wav").read_text() == "new" and (tmp_path / "out" / "keep.txt").read_text() == "mine"
  assert os.listdir(tmp_path / "out" / "pair_0") == []


def test_a_command_that_fails_midway_leaves_no_output_and_a_full_disk_is_one_line(tmp_path, capsys):
  def command(argv):
    with cli.output_dir(argv[0]) as staging:
      open(os.path.join(staging, "first.wav"), "w").close()
      raise OSError(errno.ENOSPC, "No space left on device", os.path.join(staging, "first.png"))

  with pytest.raises(SystemExit) as stopped:
    cli.run(command, [str(tmp_path / "out")])
  assert stopped.value.code == 2 and os.listdir(tmp_path) == []
  (line,) = capsys.readouterr().err.splitlines()
  assert line.startswith("error: no space left on device writing ") and "free some space" in line


@pytest.mark.parametrize("name", ["x.wav", "take.png"])
def test_an_audio_file_name_where_a_folder_is_expected_is_refused(tmp_path, name):
  with pytest.raises(InputError, match="writes a folder of files; give a folder path"):
    with cli.output_dir(str(tmp_path / name)):
      pass
  assert os.listdir(tmp_path) == []


def test_a_training_step_larger_than_the_free_memory_is_refused_before_the_workdir_exists(tmp_path, monkeypatch):
  from training import memory
  monkeypatch.setattr(memory, "available_bytes", lambda: 100)  # XLA says this step needs 420 bytes
  with pytest.raises(InputError, match=r"a training step needs about .* MiB but 0 MiB is free on cpu; lower "
                     r"data.batch_size or data.crop"):
    quadratic_run(tmp_path / "run", 2)
  assert not os.path.exists(tmp_path / "run")
  assert memory.needed_bytes(jax.jit(lambda x: x @ x).lower(jnp.ones((256, 256))).compile()) >= 2 * 256 * 256 * 4


@pytest.mark.parametrize("mode,request_,message", [
    ("direct", ["--num", "64", "--seconds", "60"], r"sampling 128 stream\(s\) of 960,000 samples needs about "
     r"[\d.]+ GiB but 64 MiB is free on cpu; ask for fewer streams or fewer seconds"),
    ("frames", ["--num", "32", "--seconds", "30"], r"vocoding 64 clip\(s\) of 480,000 samples needs about "
     r"[\d.]+ GiB but 64 MiB is free on cpu; ask for fewer clips or fewer seconds"),
])
def test_a_sampling_request_larger_than_the_free_memory_is_refused_before_anything_is_drawn(
    tmp_path, monkeypatch, mode, request_, message):
  from experiments import sample_garble
  from training import memory
  from vocoder import synthesis
  from wavenet import sampling
  monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2 ** 20)
  drawn = []
  monkeypatch.setattr(sampling, "prepare_conditioning", lambda *args, **kwargs: drawn.append(args))
  monkeypatch.setattr(synthesis, "conditioning_arrays", lambda *args, **kwargs: drawn.append(args))
  monkeypatch.setattr(sample_garble.prior_lib, "sample", lambda *args, **kwargs: drawn.append(args))
  with pytest.raises(InputError, match=message):
    sample_garble.main(["--mode", mode, *request_, "--out", str(tmp_path / "out")])
  assert drawn == [] and os.listdir(tmp_path) == []
