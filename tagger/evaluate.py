"""Per-tag ROC-AUC of a trained tagger on a split: predictions, the scores, a table and a bar chart."""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import metrics

from common.figures import pyplot, save_figure
from corpora import tagging


def predict(model, params, clips, batch_size, length):
  """Each clip's tag probabilities: the mean over its `tagging.eval_windows` of sigmoid(logits).

  Args:
    model: a `Tagger`; params its parameters.
    clips: `tagging.TaggedClips`.
    batch_size: windows per forward pass.
    length: samples per window.

  Returns:
    [n_clips, n_tags] float32 probabilities in [0, 1].
  """
  forward = jax.jit(lambda audio: jax.nn.sigmoid(model.apply(params, audio)))
  sums = np.zeros((len(clips), model.num_tags), np.float64)
  counts = np.zeros(len(clips), np.float64)
  for batch in tagging.eval_batches(clips, batch_size, length):
    probabilities = np.asarray(forward(jnp.asarray(batch["audio"])))
    np.add.at(sums, batch["clip"], probabilities * batch["weight"][:, None])
    np.add.at(counts, batch["clip"], batch["weight"])
  return (sums / counts[:, None]).astype(np.float32)


def roc_auc_per_tag(labels, scores):
  """ROC-AUC of each tag (scikit-learn), and their mean over tags with both classes present.

  Args:
    labels: [n_clips, n_tags] {0, 1} ground truth.
    scores: [n_clips, n_tags] float scores (higher: more likely the tag).

  Returns:
    (auc [n_tags] float64, NaN for a tag that is present in all clips or in
    none; mean float over the other tags).
  """
  labels, scores = np.asarray(labels), np.asarray(scores)
  auc = np.full(labels.shape[1], np.nan)
  for tag in range(labels.shape[1]):
    if 0 < labels[:, tag].sum() < len(labels):
      auc[tag] = metrics.roc_auc_score(labels[:, tag], scores[:, tag])
  return auc, float(np.nanmean(auc)) if np.any(np.isfinite(auc)) else float("nan")


def auc_table(names, auc, positives):
  """Markdown table rows: tag, test clips with the tag, ROC-AUC ('-' when undefined)."""
  rows = ["| tag | positives | ROC-AUC |", "|---|---|---|"]
  for name, value, count in zip(names, auc, positives):
    rows.append(f"| {name} | {int(count)} | {'-' if np.isnan(value) else f'{value:.3f}'} |")
  return "\n".join(rows)


def save_auc_chart(path, names, auc, mean, title):
  """Writes a bar chart of per-tag ROC-AUC with the mean as a line (PNG)."""
  figure, axis = pyplot().subplots(figsize=(max(6.0, 0.4 * len(names)), 3.5))
  values = np.nan_to_num(auc, nan=0.0)
  axis.bar(np.arange(len(names)), values, color=["C0" if np.isfinite(v) else "lightgrey" for v in auc])
  axis.axhline(mean, color="C3", linestyle="--", label=f"mean {mean:.3f}")
  axis.axhline(0.5, color="grey", linewidth=0.8, label="chance")
  axis.set_xticks(np.arange(len(names)), names, rotation=70, ha="right")
  axis.set_ylim(0.0, 1.0)
  axis.set_ylabel("ROC-AUC")
  axis.set_title(title)
  axis.legend(loc="lower right")
  save_figure(figure, path)
