"""WaveNet-activation style transfer: incremental block steps against full recompute, gender conditioning."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsp
from common import cli
from experiments import wavenet_style
from styletransfer import wavenet_style as ws
from tests.conftest import TINY_WAVENET
from training.checkpoint import Checkpointer
from wavenet.model import WaveNet

TINY = TINY_WAVENET
GENDERED = dict(TINY, global_categories=(("gender", 2),))
LENGTH = 45


def random_wavenet(fields):
  """(model, params): a WaveNet of `fields` with its initial weights jittered (seed 0), in one compiled program."""
  model = WaveNet(**fields)

  def jittered_params(key):
    params = model.init(key, jnp.zeros((1, 32), jnp.int32))
    return jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(x.size), x.shape), params)

  return model, jax.jit(jittered_params)(jax.random.key(0))


def random_codes():
  """(content [LENGTH], style [60], start [LENGTH]) int32 codes in [0, 32), seed 0."""
  rng = np.random.default_rng(0)
  return tuple(jnp.asarray(rng.integers(0, 32, n), jnp.int32) for n in (LENGTH, 60, LENGTH))


def tiny_task(model, params, content, style, global_ids=None):
  return ws.make_style_task(model, params, content, style, content_layer=4, style_layers=(0, 2), content_weight=1.0,
                            style_weight=10.0, block=4, steps=5, learning_rate=0.3, global_ids=global_ids)


@pytest.fixture(scope="module")
def setup():
  model, params = random_wavenet(TINY)
  content, style, init = random_codes()
  return model, params, tiny_task(model, params, content, style).problem, init


@pytest.fixture(scope="module")
def gendered():
  """(model, params) of a tiny WaveNet conditioned on gender."""
  return random_wavenet(GENDERED)


def test_default_layers():
  assert ws.default_layers(20) == (12, (0, 4, 8, 12, 16))


@pytest.mark.slow
def test_incremental_loss_and_gradient_equal_full_recompute(setup):
  model, params, problem, init = setup
  step = jax.jit(ws.make_block_step(problem))
  sweep = ws.initial_sweep(problem, params, init)
  for index in range(problem.num_blocks):
    logits = jax.random.normal(jax.random.key(index), (problem.block, model.num_classes))
    start = index * problem.block
    incremental = jax.value_and_grad(lambda l: ws.incremental_loss(problem, params, sweep, start, l))(logits)
    full = jax.value_and_grad(lambda l: ws.full_loss(problem, params, sweep.inputs, start, l))(logits)
    np.testing.assert_allclose(incremental[0], full[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(incremental[1], full[1], rtol=1e-4, atol=1e-4)
    sweep, loss = step(params, sweep, index)
    np.testing.assert_allclose(loss, ws.objective_of(problem, params, sweep.inputs), rtol=1e-5, atol=1e-4)


def test_frozen_blocks_are_one_hot_and_never_change_and_the_step_is_traced_once(setup):
  model, params, problem, init = setup
  step = jax.jit(chex.assert_max_traces(ws.make_block_step(problem), n=1))
  sweep = ws.initial_sweep(problem, params, init)
  context = model.receptive_field - 1
  history = []
  for index in range(problem.num_blocks):
    sweep, _ = step(params, sweep, index)
    columns = np.asarray(sweep.inputs)
    np.testing.assert_array_equal(np.sort(columns, axis=1)[:, -1], 1.0)
    np.testing.assert_array_equal(columns.sum(axis=1), 1.0)
    history.append(columns[context:context + LENGTH])
  for index in range(problem.num_blocks):
    end = (index + 1) * problem.block
    for later in history[index:]:
      np.testing.assert_array_equal(later[:end], history[index][:end])


@pytest.mark.slow
def test_coordinate_descent_beats_its_start_and_decodes_to_audio(setup):
  model, params, problem, init = setup
  start_loss = float(ws.one_hot_loss(problem, params, init))
  decoded = ws.coordinate_descent(problem, params, init, sweeps=2)
  assert decoded.codes.shape == (LENGTH,) and decoded.loss_trace.shape == (2 * problem.num_blocks,)
  final = float(ws.one_hot_loss(problem, params, decoded.codes))
  assert final < start_loss
  np.testing.assert_allclose(decoded.loss_trace[-1], final, rtol=1e-4)
  full = ws.coordinate_descent(problem, params, init, sweeps=2, incremental=False)
  np.testing.assert_allclose(full.loss_trace, decoded.loss_trace, rtol=1e-3, atol=1e-4)
  audio = dsp.dequantize(np.asarray(decoded.codes), 31)
  assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
  joint = ws.joint_relaxation(problem, params, steps=20)
  assert joint.codes.shape == (LENGTH,) and joint.loss_trace[-1] < joint.loss_trace[0]


def test_one_compilation_serves_every_clip_pair_and_weighting_of_the_same_sizes(setup):
  model, params, _, init = setup
  decode = jax.jit(chex.assert_max_traces(ws.coordinate_descent.__wrapped__, n=1),
                   static_argnames=("sweeps", "incremental"))
  score = jax.jit(chex.assert_max_traces(ws.one_hot_loss.__wrapped__, n=1))
  rng = np.random.default_rng(1)
  totals = []
  for _ in range(3):  # three clip pairs: the targets differ, the program does not
    content, style = (jnp.asarray(rng.integers(0, 32, n), jnp.int32) for n in (LENGTH, 60))
    task = tiny_task(model, params, content, style)
    codes = decode(task.problem, params, init).codes
    totals.append([float(score(problem, params, codes)) for problem in task])  # total, content only, style only
    np.testing.assert_allclose(totals[-1][0], totals[-1][1] + totals[-1][2], rtol=1e-5)
  assert len({round(total[0], 6) for total in totals}) == 3  # each pair's own targets, not the first's
  leaves = jax.tree.leaves(task.problem)
  assert len(leaves) == 4 and leaves[0].shape[0] > LENGTH  # content target, Grams, two weights: data, not constants


@pytest.mark.slow
def test_fooling_raises_the_chosen_unit(setup):
  model, params, problem, init = setup
  fooling = problem.replace(objective=ws.activation_objective(layer=5, length=LENGTH, unit=3))
  before = -float(ws.one_hot_loss(fooling, params, init))
  after = -float(ws.one_hot_loss(fooling, params, ws.coordinate_descent(fooling, params, init).codes))
  assert after > before + 0.1


@pytest.mark.slow
def test_gender_conditioning_reaches_coordinate_descent(gendered):
  model, params = gendered
  content, style, init = random_codes()
  task = tiny_task(model, params, content, style, global_ids={"gender": 1})
  problem = task.problem
  assert problem.global_ids == (("gender", 1),)
  # The content term is zero for the content clip only under the gender its targets were computed with.
  assert float(ws.one_hot_loss(task.content_only, params, content)) < 1e-9
  other_gender = task.content_only.replace(global_ids=(("gender", 0),))
  assert float(ws.one_hot_loss(other_gender, params, content)) > 1e-3
  decoded = ws.coordinate_descent(problem, params, init)
  final = float(ws.one_hot_loss(problem, params, decoded.codes))
  assert final < float(ws.one_hot_loss(problem, params, init))
  np.testing.assert_allclose(decoded.loss_trace[-1], final, rtol=1e-4)


def save_checkpoint(workdir, fields, params):
  """Writes the params of a WaveNet of `fields` to `workdir` as training would (gender labels female, male)."""
  model_config = dict(fields, global_categories=[list(item) for item in fields.get("global_categories", ())])
  checkpointer = Checkpointer(workdir)
  checkpointer.save(0, {"params": params}, model_config, {"gender": ["female", "male"]}, force=True)
  checkpointer.wait()
  checkpointer.close()


@pytest.mark.slow
def test_cli_gender_conditions_the_joint_relaxation_and_is_refused_by_an_unconditioned_wavenet(setup, gendered,
                                                                                                 tmp_path, capsys):
  model, params = gendered
  save_checkpoint(str(tmp_path / "gendered"), GENDERED, params)
  save_checkpoint(str(tmp_path / "plain"), TINY, setup[1])
  t = np.arange(160) / 16000
  dsp.save_audio(tmp_path / "c.wav", 0.5 * np.sin(2 * np.pi * 120 * t), 16000)
  dsp.save_audio(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 230 * t), 16000)
  common = ["--content", str(tmp_path / "c.wav"), "--style", str(tmp_path / "s.wav"), "--method", "joint",
            "--joint-steps", "3", "--gender", "male"]
  wavenet_style.main(common + ["--checkpoint", str(tmp_path / "gendered"), "--out", str(tmp_path / "o.wav")])
  report = json.loads((tmp_path / "o.json").read_text())
  assert set(report["methods"]) == {"joint"} and report["samples"] == 160 > model.receptive_field
  assert np.isfinite(report["methods"]["joint"]["total"]) and report["start"]["content"] < 1e-9
  assert dsp.load_audio(tmp_path / "o.wav", 16000).shape == (160,) and os.path.getsize(tmp_path / "o.png") > 100
  with pytest.raises(SystemExit) as exit_info:
    cli.run(wavenet_style.main, common + ["--checkpoint", str(tmp_path / "plain"), "--out", str(tmp_path / "x.wav")])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and "not conditioned on gender" in error
  assert not os.path.exists(tmp_path / "x.wav")
