"""Fixed evaluation crops of a split, posterior means, and linear probes on them.

A linear probe asks how much a representation knows: a logistic regression
(scikit-learn) from the posterior mean of the global latent to a label
(gender, speaker), or a ridge regression to a number (median log-F0),
trained on one set of utterances and scored on another.
"""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from corpora import batching, packed


def central_windows(clips, context, crop):
  """One window per clip around its centre: codes [n_clips, context + crop] int32.

  The crop is the clip's `crop` central samples (the whole clip, right-aligned
  after silence, when it is shorter); the `context` samples before it come from
  the clip, or are silence before its start.

  Args:
    clips: `corpora.batching.Clips`.
    context: samples of decoder context before each crop, >= 0.
    crop: samples per crop, >= 1.
  """
  end = np.minimum((clips.lengths + crop) // 2, clips.lengths)
  return batching.windows(clips, np.arange(len(clips)), end, context, crop)["codes"]


def posterior_means(model, params, windows, batch_size, progress=None):
  """Means of q(z|x): windows [N, context + crop] int32 -> [N, latent_features + F * local] float32.

  Args:
    model: an audio VLAE.
    params: its variables.
    windows: [N, context + crop] int32 mu-law codes.
    batch_size: windows per forward pass (the last batch is padded).
    progress: optional tqdm bar, advanced by one per batch.
  """
  encode = jax.jit(lambda params, window: model.apply(params, window, method=lambda module, w: module.encoder(w)).mean)
  means = []
  for rows, weight in packed.padded_rows(len(windows), batch_size):
    means.append(np.asarray(encode(params, jnp.asarray(windows[rows])))[weight > 0])
    if progress is not None:
      progress.update(1)
  return np.concatenate(means)


def _classifier():
  return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def probe_accuracy(train_features, train_labels, test_features, test_labels):
  """Accuracy in [0, 1] on the test set of a logistic regression fit on the training set.

  Args:
    train_features, test_features: [N, D] float32.
    train_labels, test_labels: [N] int.
  """
  classifier = _classifier().fit(train_features, train_labels)
  return float(np.mean(classifier.predict(test_features) == test_labels))


def r2_probe(train_features, train_targets, test_features, test_targets):
  """R^2 on the test set of a ridge regression (penalty by cross-validation) fit on the training set.

  Args:
    train_features, test_features: [N, D] float32.
    train_targets, test_targets: [N] float.
  """
  regression = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
  regression.fit(train_features, train_targets)
  return float(regression.score(test_features, test_targets))


def cross_validated_accuracy(features, labels, folds=5, seed=0):
  """Mean accuracy of a logistic regression over stratified cross-validation of one set.

  Args:
    features: [N, D] float32, one row per utterance.
    labels: [N] int class ids.
    folds: folds of the stratified split; fewer when the smallest class has
      fewer members.
    seed: seed of the shuffled split.

  Returns:
    Mean test-fold accuracy in [0, 1], float; NaN when some class has a
    single member (nothing to cross-validate).
  """
  folds = min(folds, int(np.min(np.unique(labels, return_counts=True)[1])))
  if folds < 2:
    return float("nan")
  splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
  return float(np.mean(cross_val_score(_classifier(), features, labels, cv=splitter)))
