"""WaveNet-activation style transfer: incremental block steps against full recompute."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsp
from styletransfer import wavenet_style as ws
from wavenet.model import WaveNet

TINY = dict(num_stacks=2, layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=16,
            head_channels=16, num_classes=32)
LENGTH = 45


@pytest.fixture(scope="module")
def setup():
  model = WaveNet(**TINY)
  params = model.init(jax.random.key(0), jnp.zeros((1, 32), jnp.int32))
  params = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(x.size), x.shape), params)
  rng = np.random.default_rng(0)
  content = jnp.asarray(rng.integers(0, 32, LENGTH), jnp.int32)
  style = jnp.asarray(rng.integers(0, 32, 60), jnp.int32)
  content_layer, style_layers = 4, (0, 2)
  content_acts = ws.clip_activations(model, params, content, (content_layer,))[0]
  style_acts = ws.clip_activations(model, params, style, style_layers)
  problem = ws.Problem(model=model, objective=None, length=LENGTH, block=4, steps=5, learning_rate=0.3,
                       init_scale=0.0)
  objective = ws.style_objective(content_acts, style_acts, content_layer, style_layers, 1.0, 10.0,
                                 window=problem.num_blocks * problem.block + problem.window)
  problem = problem._replace(objective=objective)
  init = jnp.asarray(rng.integers(0, 32, LENGTH), jnp.int32)
  return model, params, problem, init


def test_default_layers():
  assert ws.default_layers(20) == (12, (0, 4, 8, 12, 16))


def test_incremental_loss_and_gradient_equal_full_recompute(setup):
  model, params, problem, init = setup
  step = jax.jit(ws.make_block_step(problem))
  sweep = ws._initial_sweep(problem, params, init)
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
  sweep = ws._initial_sweep(problem, params, init)
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
  joint = ws.joint_relaxation(problem, params, init, steps=20)
  assert joint.codes.shape == (LENGTH,) and joint.loss_trace[-1] < joint.loss_trace[0]


def test_fooling_raises_the_chosen_unit(setup):
  model, params, problem, init = setup
  fooling = problem._replace(objective=ws.activation_objective(layer=5, length=LENGTH, unit=3))
  before = -float(ws.one_hot_loss(fooling, params, init))
  after = -float(ws.one_hot_loss(fooling, params, ws.coordinate_descent(fooling, params, init).codes))
  assert after > before + 0.1
