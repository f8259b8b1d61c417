"""Likelihood of audio under the WaveNet: the training objective."""

import jax.numpy as jnp


def log_probs(model, params, inputs, codes, global_ids=None, global_vector=None, local=None, excitation=None):
  """Per-sample log-likelihood of `codes` given everything before each sample.

  Args:
    model: a WaveNet.
    params: its variables.
    inputs: [B, T] int32 codes (or [B, T, num_classes] soft one-hot); the
      network reads inputs[:, :-1].
    codes: [B, T] int32 codes; the targets are codes[:, receptive_field:], each
      predicted from the receptive_field inputs before it.
    global_ids, global_vector, local, excitation: conditioning, as for
      `WaveNet.__call__` (over the T - 1 inputs the network reads).

  Returns:
    [B, T - receptive_field] float32 log-probabilities in nats.
  """
  return model.apply(params, inputs[:, :-1], global_ids, global_vector, local, padding="valid",
                     excitation=excitation, targets=codes[:, model.receptive_field:]).log_prob


def make_loss_fn(model, global_names=()):
  """`(params, batch, key, *, step, train) -> (mean nats per sample, {})` for batches of crops.

  Args:
    model: a WaveNet.
    global_names: batch keys fed as categorical global conditioning, e.g.
      ("speaker", "gender").

  The batch holds `codes: [B, receptive_field + N] int32`, `[B] int32`
  arrays for each global name, and optionally `weight: [B]` (0 for padding
  rows of evaluation batches).
  """
  def loss_fn(params, batch, key, *, step, train):
    del key, step, train  # The likelihood is deterministic and the same in training and evaluation.
    ids = {name: batch[name] for name in global_names}
    per_window = -log_probs(model, params, batch["codes"], batch["codes"], ids).mean(axis=-1)
    weight = batch.get("weight", jnp.ones_like(per_window))
    return jnp.sum(per_window * weight) / jnp.sum(weight), {}
  return loss_fn
