"""Neural style on WaveNet activations, decoded by coordinate descent over one-hot inputs.

The input of a WaveNet is a [T, 256] matrix of one-hot columns. We relax each
column to softmax(logits) and optimise an objective of the residual-layer
activations (content: a deep layer matches the content clip's; style: the
time-normalised Gram matrices of shallow layers match the style clip's).
Free gradient descent on all columns ends in soft columns that are no signal;
coordinate descent instead optimises one block of `block` columns at a time
with every other column fixed (its logits start from zero: uniform columns),
then freezes the block to the one-hot of its argmax (kept only if it lowers
the objective, so the objective never rises) and moves on (block=1 is the
report's Gibbs-like procedure). The joint relaxation starts all logits from
zero too, so only coordinate descent depends on its starting input.

Incremental recomputation. Every objective here is a function of sums over
positions of per-position statistics (squared content errors, outer products
for the Gram matrices, unit activations). A block [s, s + block) can only
change the activations at positions [s, s + block + receptive_field - 1), so a
block step evaluates the network on that window alone (with receptive_field - 1
inputs of left context) and updates cached sums: running total - the window's
cached statistics + its new statistics. The cost of a block step is
O(block + receptive_field), not O(T). The sweep is one jit-compiled program:
one block step, compiled once, serves every position through dynamic slices.

Boundary convention: the sequence is preceded by receptive_field - 1 silent
samples (and followed by as many, to keep every window in bounds), and all
passes use valid convolutions, so a window sees exactly what the full pass sees.
"""

import functools
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from dsp import mulaw



class Decoded(NamedTuple):
  """Result of an optimisation.

  codes: [T] int32 mu-law codes of the final one-hot input.
  loss_trace: [n_records] float32 objective after each block (coordinate) or
    every step (joint).
  """
  codes: jax.Array
  loss_trace: jax.Array


def default_layers(num_layers):
  """(content layer, style layers): about two thirds of the depth; every fourth from the first."""
  return max(0, round(2 * num_layers / 3) - 1), tuple(range(0, num_layers, 4))


def silence_code(model):
  return int(mulaw.quantize(0.0, model.num_classes - 1))


def pad_inputs(model, one_hot, length_padded):
  """[T, C] one-hot -> [rf - 1 + length_padded + rf - 1, C]: silence before, silence (and slack) after."""
  context = model.receptive_field - 1
  silence = jax.nn.one_hot(silence_code(model), model.num_classes)
  after = length_padded - one_hot.shape[0] + context
  return jnp.concatenate([jnp.tile(silence, (context, 1)), one_hot, jnp.tile(silence, (after, 1))], axis=0)


def activations(model, params, inputs, layers, global_ids=None):
  """Activations of `layers` at the last n = len(inputs) - rf + 1 positions.

  Args:
    inputs: [n + receptive_field - 1, num_classes] (soft) one-hot.
    layers: residual-layer indices.
    global_ids: {name: [1] int32} conditioning, or None.

  Returns:
    [len(layers), n, residual_channels] float32.
  """
  n = inputs.shape[0] - model.receptive_field + 1
  out = model.apply(params, inputs[None], global_ids, padding="valid", return_activations=True)
  return jnp.stack([out.activations[layer][0, -n:] for layer in layers])


@functools.partial(jax.jit, static_argnames=("model", "layers"))
def clip_activations(model, params, codes, layers, global_ids=None):
  """Activations [len(layers), T, R] of a clip's codes [T], silence before it (layers: a tuple of indices)."""
  one_hot = jax.nn.one_hot(codes, model.num_classes)
  return activations(model, params, pad_inputs(model, one_hot, codes.shape[0])[:codes.shape[0] + model.receptive_field - 1],
                     layers, global_ids)


def gram(acts, mask):
  """Sum over positions of outer products: [L, n, R], [n] -> [L, R, R]."""
  masked = acts * mask[None, :, None]
  return jnp.einsum("ltr,lts->lrs", masked, acts)


@flax.struct.dataclass
class StyleObjective:
  """Content at one deep layer plus Gram style at shallow layers (Gatys et al., on WaveNet).

  An objective is a loss built from sums over positions of per-position
  statistics: `statistics(acts [len(layers), n, R], first position s, mask [n])`
  gives a pytree of sums over the n positions s, s + 1, ... (masked positions
  excluded) and `loss(totals)` the scalar to minimise from the sums over all
  T positions. It is a pytree: the targets and weights are traced arrays, and
  only the layers and length are static, so one compiled decoder serves every
  clip pair and weighting of the same sizes.

  loss = content_weight * mean_t,r (a_t - c_t)^2
         + style_weight * sum_layers mean_rs (G - G_style)^2,  G = sum_t a_t a_t^T / T.
  """
  content_target: jax.Array  # [T + slack, R] content clip's activations at layers[0], zero after T
  target_grams: jax.Array  # [len(layers) - 1, R, R] time-normalised Grams of the style clip
  content_weight: jax.Array  # [] weight of the content term
  style_weight: jax.Array  # [] weight of the style term
  layers: tuple = flax.struct.field(pytree_node=False)  # (content layer, style layers...)
  length: int = flax.struct.field(pytree_node=False)  # T

  def statistics(self, acts, start, mask):
    target = jax.lax.dynamic_slice(self.content_target, (start, 0), (acts.shape[1], self.content_target.shape[1]))
    squared = jnp.sum(mask[:, None] * (acts[0] - target) ** 2)
    return {"content": squared, "gram": gram(acts[1:], mask)}

  def loss(self, totals):
    content = totals["content"] / (self.length * self.content_target.shape[1])
    style = jnp.sum(jnp.mean((totals["gram"] / self.length - self.target_grams) ** 2, axis=(1, 2)))
    return self.content_weight * content + self.style_weight * style


def style_objective(content_acts, style_acts, content_layer, style_layers, content_weight, style_weight,
                    window=0):
  """The StyleObjective of a content clip's activations [T, R] at `content_layer` and a style clip's
  [len(style_layers), T_style, R]; `window` positions of slack after T in the content target."""
  return StyleObjective(
      content_target=jnp.pad(content_acts, ((0, window), (0, 0))),
      target_grams=gram(style_acts, jnp.ones(style_acts.shape[1])) / style_acts.shape[1],
      content_weight=jnp.asarray(content_weight, jnp.float32), style_weight=jnp.asarray(style_weight, jnp.float32),
      layers=(content_layer,) + tuple(style_layers), length=content_acts.shape[0])


@flax.struct.dataclass
class ActivationObjective:
  """"Fooling": maximise the mean activation of one unit (or of all units) of a layer (see StyleObjective)."""
  layers: tuple = flax.struct.field(pytree_node=False)  # (the layer,)
  length: int = flax.struct.field(pytree_node=False)  # T
  unit: Any = flax.struct.field(pytree_node=False, default=None)  # a channel index, or None for all

  def statistics(self, acts, start, mask):
    del start
    values = acts[0] if self.unit is None else acts[0, :, self.unit:self.unit + 1]
    return {"activation": jnp.sum(mask * values.mean(axis=-1))}

  def loss(self, totals):
    return -totals["activation"] / self.length


def activation_objective(layer, length, unit=None):
  """The ActivationObjective of `unit` (None: every unit) of residual layer `layer` over T = `length`."""
  return ActivationObjective(layers=(layer,), length=length, unit=unit)


class _Sweep(NamedTuple):
  inputs: jax.Array  # [rf - 1 + T_padded + rf - 1, C] current one-hot columns
  cache: jax.Array  # [len(layers), T_padded + window, R] activations of `inputs`, zero past T
  totals: Any  # objective statistics summed over [0, T)


@flax.struct.dataclass
class Problem:
  """One decoding problem: a pytree whose only leaves are its objective's targets and weights.

  The jitted decoders take it as an ordinary argument; its other fields are
  static (part of the tree structure), so a problem of the same sizes and
  settings reuses the compiled program whatever the clips.
  """
  objective: Any  # a StyleObjective or ActivationObjective
  model: Any = flax.struct.field(pytree_node=False)
  length: int = flax.struct.field(pytree_node=False)  # T
  block: int = flax.struct.field(pytree_node=False)  # columns per block
  steps: int = flax.struct.field(pytree_node=False)  # optimiser steps per block
  learning_rate: float = flax.struct.field(pytree_node=False)
  global_ids: tuple = flax.struct.field(pytree_node=False, default=())  # ((name, class id), ...) sorted; () for none

  @property
  def global_id_arrays(self):
    """The conditioning as the WaveNet takes it: {name: [1] int32}, or None without conditioning."""
    if not self.global_ids:
      return None
    return {name: jnp.array([class_id], jnp.int32) for name, class_id in self.global_ids}

  @property
  def num_blocks(self):
    return -(-self.length // self.block)

  @property
  def window(self):
    """Positions a block can change: block + receptive_field - 1."""
    return self.block + self.model.receptive_field - 1


def hashable_global_ids(global_ids):
  """{name: class id} or ((name, class id), ...) or None -> ((name, int class id), ...) sorted by name."""
  return tuple(sorted((name, int(class_id)) for name, class_id in dict(global_ids or {}).items()))


def initial_sweep(problem, params, codes):
  """The sweep state of the one-hot input of `codes` [T] int32: padded inputs, cached activations, totals."""
  model, objective = problem.model, problem.objective
  padded_length = problem.num_blocks * problem.block
  inputs = pad_inputs(model, jax.nn.one_hot(codes, model.num_classes), padded_length)
  context = model.receptive_field - 1
  acts = activations(model, params, inputs[:problem.length + context], objective.layers, problem.global_id_arrays)
  mask = jnp.ones(problem.length)
  totals = objective.statistics(acts, 0, mask)
  cache = jnp.pad(acts, ((0, 0), (0, padded_length + problem.window - problem.length), (0, 0)))
  return _Sweep(inputs, cache, totals)


def _window_inputs(problem, inputs, start, block_logits):
  context = problem.model.receptive_field - 1
  window = jax.lax.dynamic_slice(inputs, (start, 0), (problem.window + context, inputs.shape[1]))
  return jax.lax.dynamic_update_slice(window, jax.nn.softmax(block_logits), (context, 0))


def incremental_loss(problem, params, sweep, start, block_logits):
  """Objective with the block at `start` set to softmax(block_logits), from the window alone."""
  objective = problem.objective
  window = _window_inputs(problem, sweep.inputs, start, block_logits)
  acts = activations(problem.model, params, window, objective.layers, problem.global_id_arrays)
  mask = (start + jnp.arange(problem.window) < problem.length).astype(jnp.float32)
  cached = jax.lax.dynamic_slice(sweep.cache, (0, start, 0), (len(objective.layers), problem.window, acts.shape[-1]))
  totals = jax.tree.map(lambda total, new, old: total + new - old, sweep.totals,
                        objective.statistics(acts, start, mask), objective.statistics(cached, start, mask))
  return objective.loss(totals)


def objective_of(problem, params, inputs):
  """The objective of padded inputs [rf - 1 + T + ..., C] taken as they are (soft or hard)."""
  context = problem.model.receptive_field - 1
  acts = activations(problem.model, params, inputs[:problem.length + context], problem.objective.layers,
                     problem.global_id_arrays)
  return problem.objective.loss(problem.objective.statistics(acts, 0, jnp.ones(problem.length)))


def full_loss(problem, params, inputs, start, block_logits):
  """The objective with the block at `start` set to softmax(block_logits), over the whole sequence (O(T))."""
  context = problem.model.receptive_field - 1
  inputs = jax.lax.dynamic_update_slice(inputs, jax.nn.softmax(block_logits), (start + context, 0))
  return objective_of(problem, params, inputs)


def _optimise_block(problem, params, sweep, start, block_loss):
  """K Adam steps on one block's logits from zero (uniform columns), then the block frozen to its argmax one-hot."""
  context = problem.model.receptive_field - 1
  current = jax.lax.dynamic_slice(sweep.inputs, (start + context, 0), (problem.block, sweep.inputs.shape[1]))
  logits = jnp.zeros_like(current)
  optimizer = optax.adam(problem.learning_rate)
  grad_fn = jax.grad(lambda logits: block_loss(sweep, start, logits))

  def step(_, carry):
    logits, opt_state = carry
    updates, opt_state = optimizer.update(grad_fn(logits), opt_state)
    return optax.apply_updates(logits, updates), opt_state

  logits, _ = jax.lax.fori_loop(0, problem.steps, step, (logits, optimizer.init(logits)))
  candidate = jax.nn.one_hot(jnp.argmax(logits, axis=-1), current.shape[1])
  # Keep the block's current columns unless the candidate lowers the objective: a descent method.
  hard = 1e4  # softmax(hard * one_hot) is that one-hot exactly in float32.
  better = block_loss(sweep, start, hard * candidate) < block_loss(sweep, start, hard * current)
  frozen = jnp.where(better, candidate, current)
  return jax.lax.dynamic_update_slice(sweep.inputs, frozen, (start + context, 0))


def _refresh(problem, params, sweep, inputs, start):
  """Caches and totals after the block at `start` was frozen into `inputs`."""
  objective = problem.objective
  context = problem.model.receptive_field - 1
  window = jax.lax.dynamic_slice(inputs, (start, 0), (problem.window + context, inputs.shape[1]))
  acts = activations(problem.model, params, window, objective.layers, problem.global_id_arrays)
  mask = (start + jnp.arange(problem.window) < problem.length).astype(jnp.float32)
  acts = acts * mask[None, :, None]
  cached = jax.lax.dynamic_slice(sweep.cache, (0, start, 0), acts.shape)
  totals = jax.tree.map(lambda total, new, old: total + new - old, sweep.totals,
                        objective.statistics(acts, start, mask), objective.statistics(cached, start, mask))
  return _Sweep(inputs, jax.lax.dynamic_update_slice(sweep.cache, acts, (0, start, 0)), totals)


def make_block_step(problem, incremental=True):
  """`block_step(params, sweep, block_index) -> (sweep, loss)`: optimise and freeze one block."""
  def block_step(params, sweep, index):
    start = index * problem.block
    if incremental:
      inputs = _optimise_block(problem, params, sweep, start, functools.partial(incremental_loss, problem, params))
      sweep = _refresh(problem, params, sweep, inputs, start)
      return sweep, problem.objective.loss(sweep.totals)
    inputs = _optimise_block(problem, params, sweep, start,
                             lambda sweep, start, logits: full_loss(problem, params, sweep.inputs, start, logits))
    return sweep._replace(inputs=inputs), objective_of(problem, params, inputs)
  return block_step


def _final_codes(problem, inputs):
  context = problem.model.receptive_field - 1
  return jnp.argmax(inputs[context:context + problem.length], axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("sweeps", "incremental"))
def coordinate_descent(problem, params, init_codes, sweeps=1, incremental=True):
  """Decodes by coordinate descent: one compiled program for all sweeps and blocks.

  Args:
    problem: a Problem (its targets traced, its sizes static).
    params: WaveNet variables.
    init_codes: [T] int32 starting codes (the content clip, or noise).
    sweeps: passes over all blocks.
    incremental: window-only block steps (True) or full recompute (False).

  Returns:
    Decoded codes and the loss after every block, [sweeps * num_blocks].
  """
  block_step = make_block_step(problem, incremental)
  sweep = initial_sweep(problem, params, init_codes)
  indices = jnp.tile(jnp.arange(problem.num_blocks), sweeps)
  sweep, trace = jax.lax.scan(lambda sweep, index: block_step(params, sweep, index), sweep, indices)
  return Decoded(_final_codes(problem, sweep.inputs), trace)


@functools.partial(jax.jit, static_argnames=("steps",))
def joint_relaxation(problem, params, steps):
  """The naive alternative: Adam on all logits at once from zero (uniform columns), argmax at the end.

  Returns:
    Decoded codes and the relaxed loss at every step, [steps].
  """
  model = problem.model
  context = model.receptive_field - 1
  logits = jnp.zeros((problem.length, model.num_classes))
  silence = jax.nn.one_hot(silence_code(model), model.num_classes)
  prefix = jnp.tile(silence, (context, 1))

  def loss_fn(logits):
    inputs = jnp.concatenate([prefix, jax.nn.softmax(logits)], axis=0)
    acts = activations(model, params, inputs, problem.objective.layers, problem.global_id_arrays)
    return problem.objective.loss(problem.objective.statistics(acts, 0, jnp.ones(problem.length)))

  optimizer = optax.adam(problem.learning_rate)

  def step(carry, _):
    logits, opt_state = carry
    loss, grads = jax.value_and_grad(loss_fn)(logits)
    updates, opt_state = optimizer.update(grads, opt_state)
    return (optax.apply_updates(logits, updates), opt_state), loss

  (logits, _), trace = jax.lax.scan(step, (logits, optimizer.init(logits)), None, length=steps)
  return Decoded(jnp.argmax(logits, axis=-1).astype(jnp.int32), trace)


class StyleTask(NamedTuple):
  """A style-transfer problem and its two terms alone, to report them apart."""
  problem: Problem  # content_weight * content + style_weight * style
  content_only: Problem  # content_weight * content
  style_only: Problem  # style_weight * style


def make_style_task(model, params, content_codes, style_codes, content_layer, style_layers, content_weight,
                    style_weight, block, steps, learning_rate, global_ids=None):
  """The decoding problem for content codes [T] and style codes [T_style] (int32 mu-law).

  global_ids: {name: class id} global conditioning of the WaveNet (e.g. {"gender": 1}), or None.
  """
  problem = Problem(objective=None, model=model, length=content_codes.shape[0], block=block, steps=steps,
                    learning_rate=learning_rate, global_ids=hashable_global_ids(global_ids))
  content_acts = clip_activations(model, params, content_codes, (content_layer,), problem.global_id_arrays)[0]
  style_acts = clip_activations(model, params, style_codes, tuple(style_layers), problem.global_id_arrays)
  slack = problem.num_blocks * problem.block + problem.window

  def with_weights(content_weight, style_weight):
    return problem.replace(objective=style_objective(content_acts, style_acts, content_layer, style_layers,
                                                      content_weight, style_weight, window=slack))

  return StyleTask(with_weights(content_weight, style_weight), with_weights(content_weight, 0.0),
                   with_weights(0.0, style_weight))


def task_losses(task, params, codes):
  """Weighted content, style and total loss of a hard input: [T] codes -> dict of floats."""
  losses = {"content": float(one_hot_loss(task.content_only, params, codes)),
            "style": float(one_hot_loss(task.style_only, params, codes))}
  losses["total"] = losses["content"] + losses["style"]
  return losses


@jax.jit
def one_hot_loss(problem, params, codes):
  """The objective of a hard one-hot input: [T] codes -> scalar."""
  model = problem.model
  return objective_of(problem, params, pad_inputs(model, jax.nn.one_hot(codes, model.num_classes), problem.length))
