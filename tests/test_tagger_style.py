"""Tests of styletransfer/tagger_style.py and its CLIs: fooling under an SNR bound, neural style, bad input."""

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
from tagger.model import build_model
from tagger.train import train_and_evaluate
from tests.conftest import REPO_ROOT



@pytest.fixture(scope="module")
def tiny_tagger():
  model = build_model(dict(tagger_music.get_config("smoke").model.to_dict()), 3)
  audio = 0.3 * jnp.sin(2 * jnp.pi * 440.0 * jnp.arange(4096) / 16000.0)
  return model, model.init(jax.random.key(0), audio[None]), audio


def test_snr_of_a_hand_computed_change():
  reference = np.ones(100)
  assert tagger_style.snr_db(reference, reference + 0.1) == pytest.approx(20.0)
  assert tagger_style.snr_db(reference, reference) == float("inf")


def test_spectral_flatness_tells_noise_from_a_tone():
  noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
  tone = np.sin(2 * np.pi * 440.0 * np.arange(16000) / 16000.0).astype(np.float32)
  assert tagger_style.spectral_flatness(noise) > 0.4 > 0.01 > tagger_style.spectral_flatness(tone)


@pytest.mark.parametrize("leash", ["l2", "spectral"])
def test_fooling_raises_the_tag_and_keeps_the_snr_bound(tiny_tagger, leash):
  model, params, audio = tiny_tagger
  before = float(tagger_style.probabilities(model, params, audio)[1])
  result = tagger_style.fool(model, params, audio, 1, steps=30, learning_rate=1e-3, leash=leash, leash_weight=0.01,
                             min_snr_db=25.0, target_probability=0.99)
  after = float(tagger_style.probabilities(model, params, result.audio)[1])
  assert after > before + 0.05
  assert tagger_style.snr_db(audio, result.audio) >= 25.0
  assert float(jnp.abs(result.audio).max()) <= 1.0
  assert result.trace.shape == (30,) and float(result.trace[0]) == pytest.approx(before, abs=1e-5)
  # Steps large enough to push the change onto the SNR ball: the bound still holds (float32 rounding included).
  pushed = tagger_style.fool(model, params, audio, 1, steps=30, learning_rate=3e-2, leash=leash, leash_weight=0.0,
                             min_snr_db=25.0, target_probability=0.99)
  assert 25.0 <= tagger_style.snr_db(audio, pushed.audio) < 25.01


def test_style_transfer_lowers_its_objective(tiny_tagger):
  model, params, audio = tiny_tagger
  style = 0.3 * jax.random.normal(jax.random.key(1), (4096,))
  content_layer, style_layers = tagger_style.default_layers(model)
  assert (content_layer, style_layers) == ("stage1", ("frontend", "stage0"))
  result = tagger_style.style_transfer(model, params, audio, style, audio, content_layer=content_layer,
                                       style_layers=style_layers, steps=20, learning_rate=3e-3, style_weight=10.0)
  assert float(result.loss_trace[-1]) < 0.8 * float(result.loss_trace[0])
  assert result.audio.shape == audio.shape


def test_unknown_tag_is_refused():
  with pytest.raises(InputError, match="unknown tag 'cowbell'; this tagger knows: a, b"):
    tagger_style.tag_index(["a", "b"], "cowbell")


@pytest.mark.slow
def test_fooling_and_style_clis_write_their_outputs_and_refuse_bad_tags(music_dir, tmp_path):
  config = tagger_music.get_config("smoke")
  config.data.data_dir = music_dir
  workdir = str(tmp_path / "run")
  train_and_evaluate(config, workdir)
  out = str(tmp_path / "fool")
  common = ["--workdir", workdir, "--data-dir", music_dir, "--out"]
  bad = subprocess.run([sys.executable, "-m", "experiments.tagger_fooling", "--tag", "cowbell", *common, out],
                       cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "unknown tag 'cowbell'" in bad.stderr
  assert not os.path.exists(out)
  done = subprocess.run([sys.executable, "-m", "experiments.tagger_fooling", "--tag", "organ", "--clips", "1",
                         "--seconds", "1", "--steps", "5", *common, out], cwd=REPO_ROOT, capture_output=True,
                        text=True, check=False)
  assert done.returncode == 0, done.stderr
  report = json.load(open(os.path.join(out, "fooling.json")))
  row = report["clips"][0]
  assert row["snr_db"] >= 20.0 and set(row["probabilities_after"]) == set(row["probabilities_before"])
  for name in ("clip0_original.wav", "clip0_original.png", "clip0_fooled.wav", "clip0_fooled.png", "clip0.png"):
    assert os.path.getsize(os.path.join(out, name)) > 100
  style_out = str(tmp_path / "style.wav")
  done = subprocess.run([sys.executable, "-m", "experiments.tagger_style", "--content", "test:0", "--style", "test:1",
                         "--seconds", "1", "--steps", "5", "--workdir", workdir, "--data-dir", music_dir, "--out",
                         style_out], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr
  report = json.load(open(str(tmp_path / "style.json")))
  assert report["loss_last"] < report["loss_first"] and set(report["probabilities"]) == {"content", "style", "result"}
  assert os.path.getsize(str(tmp_path / "style.png")) > 100
