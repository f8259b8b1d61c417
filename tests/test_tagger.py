"""Tests of tagger/: the three frontends, ROC-AUC against hand-computed cases, a smoke training run and its evaluation."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common.errors import InputError
from experiments.configs import tagger_music
from styletransfer import tagger_style
from tagger import evaluate
from tagger.model import build_model
from tagger.train import make_loss_fn, train_and_evaluate
from tests.conftest import REPO_ROOT



def test_roc_auc_matches_a_hand_computed_case():
  # Tag 0: positives score 0.35 and 0.8, negatives 0.1 and 0.4; 3 of the 4 (positive, negative)
  # pairs are ordered right -> 0.75. Tag 1: the positive scores 0.3, the negatives 0.3, 0.3 and 0.2;
  # ties count half -> (0.5 + 0.5 + 1) / 3. Tag 2 is in every clip: undefined, left out of the mean.
  labels = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 0, 1]])
  scores = np.array([[0.1, 0.3, 0.2], [0.4, 0.3, 0.1], [0.35, 0.3, 0.5], [0.8, 0.2, 0.9]])
  auc, mean = evaluate.roc_auc_per_tag(labels, scores)
  assert auc[0] == pytest.approx(0.75)
  assert auc[1] == pytest.approx(2.0 / 3.0)
  assert np.isnan(auc[2])
  assert mean == pytest.approx((0.75 + 2.0 / 3.0) / 2)


def test_roc_auc_of_a_perfect_and_a_reversed_ranking():
  labels = np.array([[1, 1], [1, 1], [0, 0]])
  scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
  auc, mean = evaluate.roc_auc_per_tag(labels, scores)
  np.testing.assert_allclose(auc, [1.0, 0.0])
  assert mean == pytest.approx(0.5)


@pytest.mark.parametrize("frontend", ["raw", "logmel", "lstm"])
def test_every_frontend_gives_logits_and_named_activations(frontend):
  config = tagger_music.get_config("smoke")
  model = build_model(dict(config.model.to_dict(), frontend=frontend), 5)
  audio = jax.random.uniform(jax.random.key(0), (2, 4096), minval=-0.5, maxval=0.5)
  params = model.init(jax.random.key(1), audio)
  logits, activations = model.apply(params, audio, return_activations=True)
  assert logits.shape == (2, 5) and logits.dtype == jnp.float32
  assert tuple(activations) == model.layer_names()
  frames = {"raw": (4096 - 512) // 128 + 1, "logmel": 1 + 4096 // 128, "lstm": 1 + 4096 // 128}[frontend]
  assert activations["frontend"].shape == (2, frames, 16)
  np.testing.assert_allclose(model.apply(params, audio), logits, rtol=1e-6)
  # Whole-batch independence: a clip's logits do not depend on its batch mates.
  np.testing.assert_allclose(model.apply(params, audio[:1]), logits[:1], rtol=1e-4, atol=1e-5)


def test_dropout_only_in_training_and_evaluation_batches_ignore_the_key():
  model = build_model(dict(tagger_music.get_config("smoke").model.to_dict(), dropout=0.5), 3)
  audio = jax.random.uniform(jax.random.key(0), (2, 4096), minval=-0.5, maxval=0.5)
  params = model.init(jax.random.key(1), audio)
  deterministic = model.apply(params, audio)
  dropped = model.apply(params, audio, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(dropped, deterministic, atol=1e-3)
  loss_fn = make_loss_fn(model, flip_polarity=True)
  batch = {"audio": audio, "tags": jnp.ones((2, 3)), "weight": jnp.ones(2)}
  evaluate = lambda key: float(loss_fn(params, batch, key, step=0, train=False)[0])
  assert evaluate(jax.random.key(3)) == evaluate(jax.random.key(4))


def test_polarity_flip_negates_whole_training_clips():
  model = build_model(dict(tagger_music.get_config("smoke").model.to_dict(), dropout=0.0), 3)
  audio = jax.random.uniform(jax.random.key(0), (1, 4096), minval=-0.5, maxval=0.5)
  params = model.init(jax.random.key(1), audio)
  tags = jnp.array([[1.0, 0.0, 1.0]])
  evaluation = make_loss_fn(model)
  as_given = float(evaluation(params, {"audio": audio, "tags": tags}, None, step=0, train=False)[0])
  negated = float(evaluation(params, {"audio": -audio, "tags": tags}, None, step=0, train=False)[0])
  assert abs(as_given - negated) > 1e-4
  training = make_loss_fn(model, flip_polarity=True)
  losses = [float(training(params, {"audio": audio, "tags": tags}, jax.random.key(seed), step=0, train=True)[0])
            for seed in range(16)]
  assert all(min(abs(loss - as_given), abs(loss - negated)) < 1e-5 for loss in losses)
  assert any(abs(loss - as_given) < 1e-5 for loss in losses) and any(abs(loss - negated) < 1e-5 for loss in losses)
  unflipped = make_loss_fn(model)
  assert all(abs(float(unflipped(params, {"audio": audio, "tags": tags}, jax.random.key(seed), step=0,
                                 train=True)[0]) - as_given) < 1e-5 for seed in range(4))


def test_log_power_filterbank_is_polarity_invariant():
  config = dict(tagger_music.get_config("smoke").model.to_dict(), frontend="raw")
  audio = jax.random.uniform(jax.random.key(0), (2, 4096), minval=-0.5, maxval=0.5)
  linear, compressed = build_model(config, 3), build_model(dict(config, log_power=True), 3)
  params = linear.init(jax.random.key(1), audio)
  np.testing.assert_allclose(compressed.apply(params, -audio), compressed.apply(params, audio), rtol=1e-5, atol=1e-6)
  assert not np.allclose(linear.apply(params, -audio), linear.apply(params, audio), atol=1e-3)


def test_pooled_filterbank_is_the_max_of_finer_filter_outputs():
  config = dict(tagger_music.get_config("smoke").model.to_dict(), frontend="raw", hop=64, filter_stride=16,
                filter_length=32)
  model = build_model(config, 3)
  audio = jax.random.uniform(jax.random.key(0), (1, 1024), minval=-0.5, maxval=0.5)
  params = model.init(jax.random.key(1), audio)
  _, activations = model.apply(params, audio, return_activations=True)
  filterbank = params["params"]["filterbank"]
  signal = np.asarray(audio[0], np.float64)
  outputs = np.stack([signal[start:start + 32] @ np.asarray(filterbank["kernel"][:, 0], np.float64)
                      for start in range(0, 1024 - 32 + 1, 16)]) + np.asarray(filterbank["bias"])
  pooled = outputs[:len(outputs) // 4 * 4].reshape(-1, 4, outputs.shape[1]).max(axis=1)
  expected = (pooled - pooled.mean(-1, keepdims=True)) / np.sqrt(pooled.var(-1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(activations["frontend"][0], expected, rtol=1e-4, atol=1e-4)
  with pytest.raises(InputError, match="filter_stride 24 must divide hop 64"):
    build_model(dict(config, filter_stride=24), 3).init(jax.random.key(1), audio)


@pytest.mark.parametrize("fields, body_frames", [
    ({"frontend": "raw"}, 4 ** 2),
    ({"frontend": "raw", "filter_stride": 16}, 4 ** 2),
    ({"frontend": "logmel"}, 4 ** 2),
    ({"frontend": "lstm"}, 2),
])
def test_min_samples_is_the_shortest_input_the_body_can_pool(fields, body_frames):
  config = dict(tagger_music.get_config("smoke").model.to_dict(), stage_channels=(8, 8, 8), pool=4, lstm_pool=2,
                hop=128, filter_length=512, **fields)
  model = build_model(config, 3)
  shortest = model.min_samples()
  audio = jax.random.uniform(jax.random.key(0), (1, shortest), minval=-0.5, maxval=0.5)
  params = model.init(jax.random.key(1), audio)
  logits, activations = model.apply(params, audio, return_activations=True)
  assert logits.shape == (1, 3) and activations["frontend"].shape[1] == body_frames
  # The same frontend under a body that pools nothing has one frame fewer at one sample fewer.
  unpooled = build_model(dict(config, stage_channels=(8,), lstm_pool=1), 3)
  _, activations = unpooled.apply(unpooled.init(jax.random.key(1), audio), audio[:, :-1], return_activations=True)
  assert activations["frontend"].shape[1] == body_frames - 1
  with pytest.raises(InputError, match=f"{shortest - 1} samples is shorter than this tagger's shortest input, {shortest}"):
    model.apply(params, audio[:, :-1])


def test_unknown_frontend_is_refused():
  with pytest.raises(InputError, match="unknown frontend 'cnn'"):
    build_model({"frontend": "cnn"}, 3)


def test_loss_is_binary_cross_entropy_weighted_by_rows():
  model = build_model(dict(tagger_music.get_config("smoke").model.to_dict()), 2)
  audio = jnp.zeros((2, 4096))
  params = model.init(jax.random.key(0), audio)
  logits = model.apply(params, audio)
  tags = jnp.array([[1.0, 0.0], [0.0, 0.0]])
  loss, metrics = make_loss_fn(model)(params, {"audio": audio, "tags": tags, "weight": jnp.array([1.0, 0.0])}, None,
                                      step=0, train=False)
  expected = np.mean([np.log1p(np.exp(-logits[0, 0])), np.log1p(np.exp(logits[0, 1]))])
  assert float(loss) == pytest.approx(float(expected), rel=1e-5)
  # The reported metrics are those of the weighted rows alone: row 1 (weight 0) has other tags, so counting it
  # would change both. Accuracy: a tag is right when the sign of its logit matches the tag.
  assert float(metrics["bce"]) == pytest.approx(float(expected), rel=1e-5)
  expected_accuracy = np.mean([float(logits[0, 0]) > 0, float(logits[0, 1]) <= 0])
  assert float(metrics["tag_accuracy"]) == pytest.approx(expected_accuracy)


def test_smoke_training_runs_and_evaluates(music_dir, tmp_path):
  config = tagger_music.get_config("smoke")
  config.data.data_dir = music_dir
  workdir = str(tmp_path / "run")
  state = train_and_evaluate(config, workdir)
  assert int(state.step) == 3
  rows = open(os.path.join(workdir, "metrics.csv")).read().splitlines()
  evals = [float(row.split(",")[2]) for row in rows if ",eval/bce," in row]
  assert len(evals) == 2 and all(np.isfinite(evals)) and 0.3 < evals[0] < 1.0
  assert any(",eval/bits_per_tag," in row for row in rows) and not any("bits_per_sample" in row for row in rows)
  out = str(tmp_path / "eval")
  result = subprocess.run([sys.executable, "-m", "experiments.eval_tagger", "--workdir", workdir, "--data-dir",
                           music_dir, "--window", "8192", "--out", out], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stderr
  report = json.load(open(os.path.join(out, "roc_auc.json")))
  assert report["clips"] == 4 and report["split"] == "test" and len(report["roc_auc"]) == 16
  defined = [value for value in report["roc_auc"].values() if value is not None]
  assert report["mean_roc_auc"] == pytest.approx(np.mean(defined))
  assert os.path.getsize(os.path.join(out, "roc_auc.png")) > 1000
  assert "| bach |" in open(os.path.join(out, "roc_auc.md")).read()
  selected_out = str(tmp_path / "selected")
  result = subprocess.run([sys.executable, "-m", "experiments.eval_tagger", "--workdir", workdir, "--data-dir",
                           music_dir, "--window", "8192", "--select-on", "validation", "--out", selected_out],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  report = json.load(open(os.path.join(selected_out, "roc_auc.json")))
  scores = report["selected_on"]["mean_roc_auc"]
  assert report["split"] == "test" and sorted(scores) == sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  best = max(scores, key=lambda step: (scores[step], -int(step)))
  assert report["checkpoint"] == os.path.join(workdir, "checkpoints", best)
  refused = subprocess.run([sys.executable, "-m", "experiments.eval_tagger", "--workdir", workdir, "--select-on",
                            "test"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert refused.returncode == 2 and "select on another" in refused.stderr and "Traceback" not in refused.stderr


def test_style_and_fooling_refuse_short_and_silent_clips():
  model = build_model(tagger_music.get_config("smoke").model, 3)
  shortest = model.min_samples()
  with pytest.raises(InputError, match=f"a.wav: {shortest - 1} samples, shorter than the tagger's shortest input"):
    tagger_style.check_clip(np.ones(shortest - 1, np.float32), model, "a.wav")
  with pytest.raises(InputError, match="silent"):
    tagger_style.check_clip(np.zeros(shortest, np.float32), model, "b.wav")
  tagger_style.check_clip(np.full(shortest, 0.1, np.float32), model, "c.wav")


def test_train_tagger_command_trains_resumes_and_refuses_a_config_typo(music_dir, tmp_path):
  workdir = str(tmp_path / "run")
  command = [sys.executable, "-m", "experiments.train_tagger", "--config", "experiments/configs/tagger_music.py:smoke",
             "--workdir", workdir, f"--config.data.data_dir={music_dir}"]
  done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "3"
  again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert again.returncode == 0 and "resuming from step 3" in again.stdout
  typo = subprocess.run(command[:-1] + ["--config.train.num_stepz=5"], cwd=REPO_ROOT, capture_output=True,
                        text=True, check=False)
  assert typo.returncode == 2 and typo.stderr.count("\n") == 1 and "did you mean 'num_steps'" in typo.stderr


def test_a_crop_longer_than_every_training_clip_is_refused_before_the_workdir(music_dir, tmp_path):
  config = tagger_music.get_config("smoke")
  config.data.data_dir = music_dir
  config.data.crop = 10_000_000
  with pytest.raises(InputError, match="data.crop is 10000000 samples, longer than every training clip"):
    train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
