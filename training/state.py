"""Train state, optimiser and the jitted training step shared by every model."""

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue bit for bit; the one checkpointed pytree.

  step: [] int32, optimiser steps taken.
  params: model parameters.
  opt_state: optimiser state.
  key: [2] uint32 raw PRNG key; step t draws from fold_in(key, t).
  """
  step: jax.Array
  params: Any
  opt_state: Any
  key: jax.Array


def make_optimizer(learning_rate, num_steps, warmup_steps, weight_decay, clip_norm):
  """AdamW with linear warm-up then cosine decay to 0, after global-norm clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps,
      decay_steps=max(num_steps, warmup_steps + 1), end_value=0.0)
  return optax.chain(optax.clip_by_global_norm(clip_norm),
                     optax.adamw(schedule, weight_decay=weight_decay))


def create_state(params, optimizer, seed):
  """Fresh state at step 0 for `params` and a run seed."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                    key=jax.random.key_data(jax.random.key(seed)))


def step_key(state):
  """The PRNG key of the step about to be taken: fold_in(state.key, state.step)."""
  return jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)


def parameter_norm(params):
  """The global L2 norm of a parameter pytree (the loop's divergence check watches it)."""
  return optax.global_norm(params)


LossFn = Callable[..., tuple]  # (params, batch, key, *, step, train) -> (loss, metrics)


def make_train_step(loss_fn: LossFn, optimizer):
  """Builds `step(state, batch, key) -> (state, metrics)`.

  Args:
    loss_fn: `(params, batch, key, *, step, train) -> (loss, metrics)`, loss
      a scalar mean in nats, metrics a dict of scalars; `step` is the step
      being taken ([] int32, e.g. for a KL warm-up) and `train` a Python bool
      (True here: dropout, augmentation and the training objective).
    optimizer: an optax GradientTransformation.

  Returns:
    A pure function; metrics gain `loss`, `grad_norm` and `param_norm` (of the updated parameters).
  """
  def step(state, batch, key):
    (loss, metrics), grads = jax.value_and_grad(
        lambda params: loss_fn(params, batch, key, step=state.step, train=True), has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads), param_norm=parameter_norm(params))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics
  return step


def make_eval_step(loss_fn: LossFn):
  """Builds `eval_step(params, step, batch, key) -> metrics` (loss included), the loss with `train=False`."""
  def eval_step(params, step, batch, key):
    loss, metrics = loss_fn(params, batch, key, step=step, train=False)
    return dict(metrics, loss=loss)
  return eval_step
