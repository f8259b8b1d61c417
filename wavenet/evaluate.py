"""Teacher-forced likelihood of a trained WaveNet on a corpus split, per window, speaker and gender."""

import jax
import numpy as np
from tqdm import tqdm

from wavenet import loss as loss_lib


def bits_per_window(model, params, batches, global_names, drop_speaker=False):
  """Mean bits per predicted sample of each real window of `batches`.

  Args:
    model: a WaveNet.
    params: its variables.
    batches: list of `corpora.batching.eval_batches` dicts (codes [B, T],
      speaker [B], gender [B], weight [B]).
    global_names: batch keys fed as categorical global conditioning, e.g.
      ("speaker", "gender").
    drop_speaker: condition on speaker -1 (absent), as the model does when
      sampling from gender alone.

  Returns:
    {"bits": [n] float64 bits/sample, "speaker": [n] int32, "gender": [n] int32}
    over the n windows whose weight is 1.
  """
  @jax.jit
  def window_nats(params, codes, ids):
    return -loss_lib.log_probs(model, params, codes, codes, ids).mean(axis=-1)

  bits, speaker, gender = [], [], []
  for batch in tqdm(batches, desc="evaluate", unit="batch"):
    ids = {name: batch[name] for name in global_names}
    if drop_speaker and "speaker" in ids:
      ids["speaker"] = np.full_like(ids["speaker"], -1)
    real = batch["weight"] > 0
    bits.append(np.asarray(window_nats(params, batch["codes"], ids))[real] / np.log(2))
    speaker.append(batch["speaker"][real])
    gender.append(batch["gender"][real])
  return {"bits": np.concatenate(bits), "speaker": np.concatenate(speaker), "gender": np.concatenate(gender)}

