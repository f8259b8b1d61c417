"""Tests of styletransfer/spectrogram.py and experiments/spectrogram_style.py."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dsp
from common import cli
from common.errors import InputError
from experiments import spectrogram_style
from styletransfer import spectrogram
from tests.conftest import REPO_ROOT

SAMPLE_RATE = 8000
# One tiny recipe shared by the L-BFGS and CLI tests, so both run the same
# compiled programs: 63 frames x 129 bins, 16 filters of width 3.
TINY = spectrogram.StyleTransferConfig(n_fft=256, hop=64, n_filters=16, filter_width=3, iterations=8,
                                       griffin_lim_iterations=4)
TINY_FLAGS = ["--sample-rate", str(SAMPLE_RATE), "--n-fft", "256", "--hop", "64", "--filters", "16",
              "--filter-width", "3", "--iterations", "8", "--griffin-lim-iterations", "4"]
N_SAMPLES = 4000  # 0.5 s at 8 kHz.


def harmonic_clip(f0, n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE):
  """[n_samples] float32: three harmonics of `f0` Hz under a slow tremolo."""
  t = np.arange(n_samples) / sample_rate
  tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
  return (0.3 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def noise_clip(seed, n_samples=N_SAMPLES):
  """[n_samples] float32 bursts of white noise."""
  noise = np.random.default_rng(seed).standard_normal(n_samples)
  gate = (np.arange(n_samples) // 500) % 2
  return (0.2 * noise * gate).astype(np.float32)


@jax.jit
def style_loss_of(features, style_features):
  """`style_loss` against `style_features` as one compiled program (eager dispatch is slow)."""
  return spectrogram.style_loss(features, spectrogram.style_target(style_features))


def numpy_gram_loss(features, style_features):
  gram = features.T @ features / features.shape[0]
  style_gram = style_features.T @ style_features / style_features.shape[0]
  return np.sum(np.square(gram - style_gram))


def test_style_loss_matches_numpy_gram_for_clips_of_different_lengths():
  rng = np.random.default_rng(0)
  features = rng.standard_normal((7, 5))
  style_features = rng.standard_normal((11, 5))
  loss = style_loss_of(jnp.asarray(features, jnp.float32), jnp.asarray(style_features, jnp.float32))
  np.testing.assert_allclose(float(loss), numpy_gram_loss(features, style_features), rtol=1e-4)


def test_style_loss_is_zero_for_the_style_itself_and_time_normalised():
  style_features = np.random.default_rng(1).random((6, 4)).astype(np.float32)
  repeated = jnp.asarray(np.concatenate([style_features, style_features]))
  assert abs(float(style_loss_of(repeated, jnp.asarray(style_features)))) < 1e-4


def test_style_loss_stays_accurate_when_its_terms_nearly_cancel():
  rng = np.random.default_rng(6)
  style_features = np.abs(rng.standard_normal((40, 256))) + 1.0  # ||S||^2 ~ 7e5.
  features = np.concatenate([style_features, style_features]) + 0.05 * rng.standard_normal((80, 256))
  loss = style_loss_of(jnp.asarray(features, jnp.float32), jnp.asarray(style_features, jnp.float32))
  np.testing.assert_allclose(float(loss), numpy_gram_loss(features, style_features), rtol=2e-3)


def test_content_loss_matches_numpy():
  rng = np.random.default_rng(2)
  a, b = rng.standard_normal((2, 6, 3)).astype(np.float32)
  np.testing.assert_allclose(float(spectrogram.content_loss(jnp.asarray(a), jnp.asarray(b))),
                             np.sum(np.square(a.astype(np.float64) - b)), rtol=1e-5)


def test_conv_features_match_a_direct_valid_convolution():
  rng = np.random.default_rng(3)
  log_magnitude = rng.standard_normal((9, 5)).astype(np.float32)
  kernel = spectrogram.random_conv_weights(0, n_bins=5, n_filters=4, width=3)
  expected = np.zeros((7, 4))
  for t in range(7):
    expected[t] = np.einsum("kc,kcf->f", log_magnitude[t:t + 3], kernel)
  features = spectrogram.conv_features(jnp.asarray(log_magnitude), jnp.asarray(kernel), relu=False)
  np.testing.assert_allclose(np.asarray(features), expected, rtol=1e-5, atol=1e-6)
  rectified = spectrogram.conv_features(jnp.asarray(log_magnitude), jnp.asarray(kernel))
  np.testing.assert_allclose(np.asarray(rectified), np.maximum(expected, 0), rtol=1e-5, atol=1e-6)


def test_random_conv_weights_follow_ulyanovs_scale():
  kernel = spectrogram.random_conv_weights(0, n_bins=100, n_filters=300, width=5)
  assert kernel.shape == (5, 100, 300) and kernel.dtype == np.float32
  np.testing.assert_allclose(kernel.std(), np.sqrt(2) * np.sqrt(2 / (400 * 5)), rtol=0.02)


def test_random_conv_is_reproducible_for_a_seed_and_differs_across_seeds():
  config = spectrogram.StyleTransferConfig(n_fft=16, hop=4, n_filters=8, filter_width=3)
  log_magnitude = jnp.asarray(np.random.default_rng(4).random((12, config.n_bins)), jnp.float32)
  targets = spectrogram.Targets(jnp.zeros((10, 8)), spectrogram.style_target(jnp.ones((10, 8))))

  objective = jax.jit(spectrogram.losses, static_argnames="config")

  def loss(seed):
    kernel = spectrogram.random_conv_weights(seed, config.n_bins, 8, 3)
    return kernel, float(objective(log_magnitude, targets, jnp.asarray(kernel), config)[0])

  (kernel_a, loss_a), (kernel_b, loss_b), (kernel_c, loss_c) = loss(7), loss(7), loss(8)
  np.testing.assert_array_equal(kernel_a, kernel_b)
  assert loss_a == loss_b
  assert not np.allclose(kernel_a, kernel_c) and loss_a != loss_c


@pytest.mark.parametrize("features", spectrogram.FEATURES)
def test_gradient_matches_finite_differences_in_float64(features):
  config = spectrogram.StyleTransferConfig(n_fft=16, hop=4, features=features, n_filters=6,
                                           filter_width=3, content_weight=0.3)
  rng = np.random.default_rng(5)
  with jax.enable_x64(True):
    kernel = jnp.asarray(spectrogram.random_conv_weights(0, config.n_bins, 6, 3), jnp.float64)
    content = jnp.asarray(rng.random((10, config.n_bins)))
    style = jnp.asarray(rng.random((13, config.n_bins)))
    targets = spectrogram.Targets(spectrogram.features(content, kernel, config),
                                  spectrogram.style_target(spectrogram.features(style, kernel, config)))

    @jax.jit
    def objective(log_magnitude):
      return spectrogram.losses(log_magnitude, targets, kernel, config)[0]

    point = jnp.asarray(rng.random((10, config.n_bins)))
    gradient = jax.grad(objective)(point)
    assert gradient.dtype == jnp.float64
    for direction in rng.standard_normal((3, 10, config.n_bins)):
      step = 1e-6 * jnp.asarray(direction)
      numeric = (objective(point + step) - objective(point - step)) / 2e-6
      np.testing.assert_allclose(float(jnp.vdot(gradient, jnp.asarray(direction))), float(numeric),
                                 rtol=1e-6)


@pytest.mark.parametrize("optimizer", spectrogram.OPTIMIZERS)
def test_loss_decreases_and_the_trace_is_recorded(optimizer):
  config = TINY if optimizer == "lbfgs" else spectrogram.StyleTransferConfig(
      n_fft=256, hop=64, features="gram", optimizer="adam", iterations=8, chunk_iterations=4,
      griffin_lim_iterations=4)
  result = spectrogram.transfer(harmonic_clip(220.0), noise_clip(0, 5000), config)
  assert result.audio.shape == (N_SAMPLES,) and np.all(np.abs(result.audio) <= 1.0)
  assert result.log_magnitude.shape == (1 + N_SAMPLES // 64, 129)
  assert np.all(np.isfinite(result.trace.total))
  assert result.trace.total[-1] < 0.8 * result.trace.total[0]
  assert result.losses["total"] < result.trace.total[0]
  content_recorded = np.isfinite(result.trace.content)
  # Adam records every step; L-BFGS once per chunk (one chunk of 20 here).
  assert content_recorded.sum() == (8 if optimizer == "adam" else 1)
  if optimizer == "lbfgs":
    assert result.timings["evaluations"] >= config.iterations
  else:
    assert result.timings["evaluations"] == config.iterations


def test_griffin_lim_spectral_convergence_improves_with_iterations():
  audio = jnp.asarray(harmonic_clip(180.0) + noise_clip(1))
  magnitude = jnp.abs(dsp.stft(audio, 256, 64))
  key = jax.random.key(0)

  def convergence(iterations):
    rebuilt = dsp.griffin_lim(magnitude, key, n_fft=256, hop=64, length=N_SAMPLES, iterations=iterations)
    return float(dsp.spectral_convergence(rebuilt, magnitude, 256, 64))

  few, many = convergence(2), convergence(40)
  assert many < 0.7 * few


def test_content_phase_gives_back_the_content_clip_when_its_magnitude_is_kept():
  # No style term and the content as the start: the gradient is zero, so Adam keeps the content's magnitude. With
  # the content's phase put back on it, the inverse STFT is the content clip itself, sample for sample; a
  # Griffin-Lim phase, rebuilt from the magnitude alone, is not.
  content = harmonic_clip(220.0)
  config = spectrogram.StyleTransferConfig(n_fft=256, hop=64, features="gram", init="content", optimizer="adam",
                                           content_weight=1.0, style_weight=0.0, iterations=2, chunk_iterations=2,
                                           phase="content", griffin_lim_iterations=4)
  result = spectrogram.transfer(content, noise_clip(0), config)
  expected_log_magnitude = np.log1p(np.abs(np.asarray(dsp.stft(jnp.asarray(content), 256, 64))))
  np.testing.assert_allclose(result.log_magnitude, expected_log_magnitude, atol=1e-6)
  assert result.audio.shape == content.shape
  np.testing.assert_allclose(result.audio, content, atol=1e-4)
  griffin_lim = spectrogram.transfer(content, noise_clip(0), dataclasses.replace(config, phase="griffin_lim"))
  assert np.max(np.abs(griffin_lim.audio - content)) > 0.1


def test_validate_clip_rejects_short_silent_and_too_few_frames():
  with pytest.raises(InputError, match="shorter than one 256-sample FFT frame"):
    spectrogram.validate_clip(np.ones(100, np.float32), TINY, "clip")
  with pytest.raises(InputError, match="silent"):
    spectrogram.validate_clip(np.full(N_SAMPLES, 1e-5, np.float32), TINY, "clip")
  wide = spectrogram.StyleTransferConfig(n_fft=256, hop=64, filter_width=11)
  with pytest.raises(InputError, match="fewer than the conv width 11"):
    spectrogram.validate_clip(harmonic_clip(200.0, 300), wide, "clip")


def test_cli_writes_all_outputs(tmp_path, capsys):
  content, style = tmp_path / "content.wav", tmp_path / "style.wav"
  dsp.save_audio(content, harmonic_clip(220.0), SAMPLE_RATE)
  dsp.save_audio(style, noise_clip(0, 10000), 2 * SAMPLE_RATE)
  out = tmp_path / "result.wav"
  spectrogram_style.main(["--content", str(content), "--style", str(style), "--out", str(out)] + TINY_FLAGS)
  stdout = capsys.readouterr().out
  assert f"{style}: resampled from 16000 Hz to 8000 Hz" in stdout
  assert f"{content}: resampled" not in stdout
  written = sorted(os.listdir(tmp_path))
  assert written == sorted(["content.wav", "style.wav", "result.wav", "result.png",
                            "result_spectrograms.png", "result_losses.png", "result.json"])
  audio = dsp.load_audio(out, SAMPLE_RATE)
  assert audio.shape == (N_SAMPLES,) and np.max(np.abs(audio)) > 0
  for png in ("result.png", "result_spectrograms.png", "result_losses.png"):
    assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  report = json.loads((tmp_path / "result.json").read_text())
  assert set(report["losses"]) == {"total", "content", "style"}
  assert {"feature_extraction", "optimisation", "evaluations", "ms_per_evaluation", "phase", "compile",
          "total"} <= set(report["timings"])
  assert report["config"]["n_filters"] == 16 and report["config"]["optimizer"] == "lbfgs"


def write_bad_input(kind, path):
  if kind == "text":
    path.write_text("this is not audio\n")
  elif kind == "silent":
    dsp.save_audio(path, np.zeros(N_SAMPLES, np.float32), SAMPLE_RATE)
  else:
    dsp.save_audio(path, harmonic_clip(220.0, 200), SAMPLE_RATE)


@pytest.mark.parametrize("kind, message", [("text", "not a readable audio file"), ("silent", "silent"),
                                           ("short", "shorter than one 256-sample FFT frame")])
def test_cli_bad_content_exits_2_with_one_line(tmp_path, capsys, kind, message):
  bad, style = tmp_path / "bad.wav", tmp_path / "style.wav"
  write_bad_input(kind, bad)
  dsp.save_audio(style, noise_clip(0), SAMPLE_RATE)
  argv = ["--content", str(bad), "--style", str(style), "--out", str(tmp_path / "out.wav")] + TINY_FLAGS
  with pytest.raises(SystemExit) as exit_info:
    cli.run(spectrogram_style.main, argv)
  assert exit_info.value.code == 2
  stderr = capsys.readouterr().err.splitlines()
  assert len(stderr) == 1 and stderr[0].startswith("error: ") and message in stderr[0]
  assert sorted(os.listdir(tmp_path)) == ["bad.wav", "style.wav"]


def test_cli_rejects_a_missing_output_directory(tmp_path, capsys):
  content = tmp_path / "content.wav"
  dsp.save_audio(content, harmonic_clip(220.0), SAMPLE_RATE)
  argv = ["--content", str(content), "--style", str(content), "--out", str(tmp_path / "no" / "out.wav")]
  with pytest.raises(SystemExit) as exit_info:
    cli.run(spectrogram_style.main, argv + TINY_FLAGS)
  assert exit_info.value.code == 2
  assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_process_prints_one_line_and_exits_2_for_a_text_file(tmp_path):
  bad = tmp_path / "notes.wav"
  write_bad_input("text", bad)
  process = subprocess.run(
      [sys.executable, "-m", "experiments.spectrogram_style", "--content", str(bad), "--style", str(bad),
       "--out", str(tmp_path / "out.wav")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert process.returncode == 2
  assert len(process.stderr.splitlines()) == 1 and "not a readable audio file" in process.stderr
  assert sorted(os.listdir(tmp_path)) == ["notes.wav"]
