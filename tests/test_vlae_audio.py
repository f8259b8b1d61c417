"""Audio VLAE: ELBO terms, analytic KL, posteriors, local-latent alignment, interpolation, training and CLIs."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corpora
import dsp
from common import cli
from common.errors import InputError
from corpora import batching
from experiments import eval_vlae, interpolate, sample_vlae
from experiments.configs import vlae_voices
from tests.conftest import harmonic_tone
from training.checkpoint import load_model_checkpoint
from vlae import audio, audio_inference, latent_paths, probe
from vlae.audio_evaluation import evaluate, gender_means
from vlae.train_audio import train_and_evaluate
from vlae.vae import vae_loss
from wavenet import pretrained, sampling

CROP = 1024  # The smoke encoder's shortest crop (one STFT frame, one local frame).


@pytest.fixture(scope="module")
def smoke_model():
  """(model, params) of the smoke config at initialisation: 4 global + 2 local latent channels."""
  model = audio.build_vlae(vlae_voices.get_config("smoke").model)
  return model, audio.init_params(model, jax.random.key(0), CROP)


def tone(frequency, length, seed):
  """[length] float32: a sine at `frequency` Hz plus a little noise."""
  noise = np.random.default_rng(seed).normal(0.0, 0.01, length)
  return (harmonic_tone(frequency, length / audio.SAMPLE_RATE, audio.SAMPLE_RATE) + noise).astype(np.float32)


def windows_of(model, clips):
  """Windows [n, context + T] int32 of clips [n, T]: silence codes of context, then the clips."""
  codes = dsp.quantize(np.asarray(clips))
  return np.pad(codes, ((0, 0), (audio.context_of(model), 0)), constant_values=dsp.quantize(np.float32(0.0)))


_jitted_loss = jax.jit(vae_loss, static_argnums=(0, 5, 6))


def test_elbo_terms_are_finite_and_the_kl_is_the_analytic_kl(smoke_model):
  model, params = smoke_model
  clips = np.stack([tone(110.0, CROP, 0), tone(220.0, CROP, 1), tone(440.0, CROP, 2)])
  windows = jnp.asarray(windows_of(model, clips))
  loss = _jitted_loss(model, params, windows, jax.random.key(1), 0, 0, 0.5)
  for term in (loss.objective, loss.elbo, loss.reconstruction, loss.kl, loss.kl_free_bits):
    assert bool(jnp.all(jnp.isfinite(term)))
  assert loss.elbo.shape == loss.kl.shape == loss.reconstruction.shape == (3,)
  q = model.apply(params, windows, method=lambda module, window: module.encoder(window))
  assert q.mean.shape == (3, 4 + 1 * 2)  # 4 global dimensions, one local frame of 2 channels
  # KL(N(m, s^2) || N(0, 1)) = 0.5 (m^2 + s^2 - 1 - log s^2) per dimension, summed; free bits floor each
  # dimension's batch mean (here 2 of the 6 dimensions lie above the floor of 0.5, 4 below).
  mean, variance = np.asarray(q.mean, np.float64), np.exp(2.0 * np.asarray(q.log_scale, np.float64))
  kl_per_dim = 0.5 * (np.square(mean) + variance - 1.0 - np.log(variance))
  np.testing.assert_allclose(loss.kl, kl_per_dim.sum(-1), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(loss.kl_free_bits, np.maximum(kl_per_dim.mean(0), 0.5).sum(), rtol=1e-4)
  # The ELBO is log p(crop | z) - KL. With the posterior's log-scale heads set to -12 (scale 6e-6) the one draw is
  # the mean, so log p(crop | z) is the log-softmax of the decoder's logits at z = mean, read at the crop's codes.
  narrow = jax.tree.map(lambda leaf: leaf, params)
  for name, features in (("global_posterior", 4), ("local_posterior", 2)):
    head = narrow["params"]["encoder"][name]
    narrow["params"]["encoder"][name] = {"kernel": head["kernel"].at[:, features:].set(0.0),
                                         "bias": head["bias"].at[features:].set(-12.0)}
  narrow_loss = _jitted_loss(model, narrow, windows, jax.random.key(1), 0, 0, 0.5)
  logits = np.asarray(model.apply(params, q.mean, windows, method=lambda module, z, w: module.decoder(z, w))
                      .crop_distribution.logits, np.float64)
  assert logits.shape == (3, CROP, 256)
  top = logits.max(-1, keepdims=True)
  log_probs = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
  crop_codes = np.asarray(windows)[:, audio.context_of(model):]
  reconstruction = np.take_along_axis(log_probs, crop_codes[..., None], axis=-1)[..., 0].sum(-1)
  narrow_kl = 0.5 * (np.square(mean) + np.exp(-24.0) - 1.0 + 24.0).sum(-1)
  np.testing.assert_allclose(narrow_loss.reconstruction, reconstruction, rtol=1e-5)
  np.testing.assert_allclose(narrow_loss.kl, narrow_kl, rtol=1e-5)
  np.testing.assert_allclose(narrow_loss.elbo, reconstruction - narrow_kl, rtol=1e-5)
  assert float(loss.beta) == 1.0  # No warm-up.
  assert bool(jnp.all(loss.reconstruction < 0.0))
  # The reconstruction is log p(crop | z) over the crop alone: about CROP * log(256) nats at initialisation.
  assert bool(jnp.all(jnp.abs(-loss.reconstruction / CROP - np.log(256.0)) < 0.5))


def test_different_clips_give_different_posteriors(smoke_model):
  model, params = smoke_model
  clips = np.stack([tone(110.0, CROP, 0), tone(330.0, CROP, 0), np.random.default_rng(5).uniform(-0.5, 0.5, CROP),
                    tone(110.0, CROP, 0)]).astype(np.float32)
  q = audio_inference.encode(model, params, clips)
  means = np.asarray(q.mean)
  for first in range(3):
    for second in range(first + 1, 3):
      assert np.max(np.abs(means[first] - means[second])) > 1e-3
  np.testing.assert_allclose(means[0], means[3], rtol=1e-6, atol=1e-7)
  assert np.all(np.isfinite(np.asarray(q.log_scale)))


def test_local_series_gives_each_prediction_the_frame_of_its_sample():
  local = jnp.arange(3, dtype=jnp.float32)[None, :, None]  # frame f holds the value f
  training = np.asarray(audio.local_series(local, 1 - 5, 5 + 10 - 1, 4))[0, :, 0]  # context 5, crop 10, hop 4
  predicted_sample = np.arange(5 + 10 - 1) + 1 - 5
  np.testing.assert_array_equal(training, np.clip(predicted_sample // 4, 0, 2))
  sampling_series = np.asarray(audio.local_series(local, 0, 10, 4))[0, :, 0]
  np.testing.assert_array_equal(sampling_series, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])


def test_decoder_conditions_the_wavenet_as_the_sampler_does(smoke_model):
  model, params = smoke_model
  clip = tone(200.0, CROP, 3)[None]
  window = jnp.asarray(windows_of(model, clip))
  z = jax.random.normal(jax.random.key(2), (1, 4 + 2))
  head = model.apply(params, z, window, method=lambda module, z, w: module.decoder(z, w)).crop_distribution.logits
  wavenet = model.decoder.wavenet
  wavenet_params = {"params": params["params"]["decoder"]["wavenet"]}
  context = audio.context_of(model)
  global_z, local = audio.split_latent(z, 4, 2)
  inputs = window[:, :-1]
  series = audio.local_series(local, 1 - context, inputs.shape[1], model.decoder.local_hop)
  conditioning = sampling.prepare_conditioning(wavenet, wavenet_params, 1, inputs.shape[1], global_vector=global_z,
                                               local=series)
  incremental = sampling.teacher_forced(wavenet, wavenet_params, inputs, conditioning)
  np.testing.assert_allclose(incremental[:, context - 1:], head, rtol=1e-4, atol=1e-4)


def test_interpolation_path_endpoints_equal_the_encodings():
  rng = np.random.default_rng(0)
  z_a, z_b = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
  for mode in ("lerp", "slerp"):
    path = latent_paths.interpolation_path(z_a, z_b, 7, mode)
    assert path.shape == (7, 6)
    np.testing.assert_array_equal(path[0], z_a)
    np.testing.assert_array_equal(path[-1], z_b)
  np.testing.assert_allclose(latent_paths.interpolation_path(z_a, z_b, 3, "lerp")[1], (z_a + z_b) / 2, rtol=1e-6)
  middle = latent_paths.interpolation_path(z_a, z_b, 3, "slerp")[1]
  np.testing.assert_allclose(np.linalg.norm(middle), (np.linalg.norm(z_a) + np.linalg.norm(z_b)) / 2, rtol=1e-5)
  with pytest.raises(InputError, match="at least 2"):
    latent_paths.interpolation_path(z_a, z_b, 1, "lerp")


@pytest.fixture(scope="module")
def smoke_run(voices_dir, tmp_path_factory):
  """A workdir trained for the smoke config's 2 steps on voices/small."""
  config = vlae_voices.get_config("smoke")
  config.data.data_dir = voices_dir
  workdir = str(tmp_path_factory.mktemp("vlae_smoke"))
  train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.slow
def test_one_training_step_on_the_smoke_config(smoke_run):
  model_config, params, labels = load_model_checkpoint(smoke_run)
  model = audio.build_vlae(model_config)
  fresh = audio.init_params(model, jax.random.key(0), vlae_voices.get_config("smoke").data.crop)
  changed = jax.tree.map(lambda trained, initial: bool(np.any(np.asarray(trained) != np.asarray(initial))),
                         params, fresh)
  assert all(jax.tree.leaves(changed))
  assert labels["corpus"] == {"name": "voices", "config": "small"} and labels["gender"] == ["female", "male"]
  rows = [line.split(",") for line in open(os.path.join(smoke_run, "metrics.csv")).read().splitlines()[1:]]
  values = {name: float(value) for step, name, value in rows if step == "2"}
  for name in ("train/negative_elbo_bits_per_sample", "train/kl_bits_per_clip", "eval/bits_per_sample",
               "eval/negative_elbo_bits_per_sample"):
    assert np.isfinite(values[name])
  assert values["eval/bits_per_sample"] == pytest.approx(values["eval/negative_elbo_bits_per_sample"], rel=1e-5)
  assert values["train/beta"] == 0.5  # Step 1 of the 2 warm-up steps.


def read_json(path):
  with open(path) as file:
    return json.load(file)


def test_evaluate_writes_the_table_row(smoke_run, voices_dir, monkeypatch):
  result = evaluate(smoke_run, None, 4, voices_dir)  # None: the training crop, from the checkpoint.
  assert read_json(os.path.join(smoke_run, "eval.json")) == json.loads(json.dumps(result))
  assert result["crop"] == vlae_voices.get_config("smoke").data.crop
  assert result["step"] == 2 and result["validation_bits_per_sample"] > 0 and result["validation_kl_bits_per_clip"] > 0
  model, params, labels = audio_inference.load_vlae(smoke_run)
  heldout = batching.preload(corpora.load_split("voices", "small", "heldout_speakers", voices_dir))
  means = probe.posterior_means(model, params, probe.central_windows(heldout, audio.context_of(model), 2048), 4)
  expected = probe.cross_validated_accuracy(means[:, :model.decoder.latent_features], heldout.speaker)
  np.testing.assert_equal(result["speaker_probe_heldout_speakers"], expected)  # NaN only if both are.
  # A step folder evaluates that step and writes into the workdir, not into the Orbax tree.
  step_folder = os.path.join(smoke_run, "checkpoints", "2")
  baseline = evaluate(step_folder, 2048, 4, voices_dir, untrained=True)
  assert read_json(os.path.join(smoke_run, "eval_untrained.json"))["step"] == baseline["step"] == 0
  assert not os.path.exists(os.path.join(step_folder, "eval_untrained.json"))
  assert baseline["validation_bits_per_sample"] != result["validation_bits_per_sample"]
  # Another crop goes to its own file, never over the training crop's row; one too short for the encoder is refused.
  # Here the probes read features that carry the labels by construction: global dimension 0 is +-1 by gender
  # (speaker and gender coincide in voices/small), its sign flipped on the test split alone. A probe fit on the
  # train split must then be wrong on every test utterance and right on every held-out speaker's.
  splits = {split: batching.preload(corpora.load_split("voices", "small", split, voices_dir))
            for split in ("train", "test", "heldout_speakers")}
  signs = {"train": 1.0, "test": -1.0, "heldout_speakers": 1.0}

  def labelled_means(model, params, windows, batch_size, progress=None):
    del params, batch_size, progress
    (split,) = [name for name, clips in splits.items()
                if np.array_equal(windows, probe.central_windows(clips, audio.context_of(model), 1024))]
    features = np.zeros((len(windows), model.decoder.latent_features + 2), np.float32)  # one local frame
    features[:, 0] = signs[split] * (2.0 * splits[split].gender - 1.0)
    return features

  with monkeypatch.context() as patch:
    patch.setattr(probe, "posterior_means", labelled_means)
    shorter = evaluate(smoke_run, 1024, 4, voices_dir)
  assert read_json(os.path.join(smoke_run, "eval_crop1024.json"))["crop"] == shorter["crop"] == 1024
  assert [shorter[name] for name in ("gender_probe_test", "speaker_probe_test", "gender_probe_heldout_speakers",
                                     "speaker_probe_heldout_speakers")] == [0.0, 0.0, 1.0, 1.0]
  assert read_json(os.path.join(smoke_run, "eval.json")) == json.loads(json.dumps(result))
  with pytest.raises(InputError, match="--crop 10: the encoder needs at least 1024 samples"):
    evaluate(smoke_run, 10, 4, voices_dir)


def test_central_windows_take_the_centre_with_context_and_pad_short_clips():
  pcm = np.arange(1, 14, dtype=np.int16) * 1000  # clip 0: 10 samples, clip 1: 3 samples
  clips = batching.Clips(samples=pcm, starts=np.array([0, 10]), lengths=np.array([10, 3]),
                         speaker=np.array([0, 1], np.int32), gender=np.array([0, 1], np.int32))
  windows = probe.central_windows(clips, context=2, crop=4)
  silence = np.int16(0)
  expected_pcm = np.array([pcm[1:7],  # context samples 1-2, then the central 4 of 10: samples 3-6
                           [silence, silence, silence, *pcm[10:13]]])  # right-aligned after silence
  assert windows.dtype == np.int32 and windows.shape == (2, 6)
  np.testing.assert_array_equal(windows, dsp.quantize(dsp.from_int16(expected_pcm)))


def test_probes_are_exact_on_separable_features_and_at_chance_on_shuffled_labels():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 20)
  separable = (labels[:, None] * 10.0 + rng.normal(0.0, 0.1, (60, 4))).astype(np.float32)
  assert probe.cross_validated_accuracy(separable, labels) == 1.0
  assert probe.probe_accuracy(separable[::2], labels[::2], separable[1::2], labels[1::2]) == 1.0
  noise = rng.normal(size=(300, 4)).astype(np.float32)
  shuffled = rng.permutation(np.repeat(np.arange(2), 150))
  assert 0.35 < probe.cross_validated_accuracy(noise, shuffled) < 0.65
  assert 0.35 < probe.probe_accuracy(noise[:150], shuffled[:150], noise[150:], shuffled[150:]) < 0.65
  singleton = np.array([0] * 10 + [1])
  assert np.isnan(probe.cross_validated_accuracy(separable[:11], singleton))


def test_build_vlae_rejects_a_decoder_with_other_than_256_classes():
  config = vlae_voices.get_config("smoke").model
  config.decoder.num_classes = 65536
  with pytest.raises(InputError, match="decoder.num_classes is 65536, but .* use 256 mu-law levels"):
    audio.build_vlae(config)


def test_build_vlae_rejects_a_flow_prior_over_local_latents():
  config = vlae_voices.get_config("smoke").model
  config.prior = "flow"
  assert config.local_latent_features > 0
  with pytest.raises(InputError, match="flow prior models a fixed-length latent"):
    audio.build_vlae(config)
  config.local_latent_features = 0
  assert isinstance(audio.build_vlae(config).prior, audio.AutoregressiveFlowPrior)


def test_decoding_past_the_local_latent_frames_is_an_input_error(smoke_model):
  model, params = smoke_model
  z = np.zeros((1, 4 + 2 * 2), np.float32)  # two local frames: 2048 samples
  audio_inference.check_decode_length(model, z, 2048)
  with pytest.raises(InputError, match="2049 samples .* 2 local latent frames covering 2048 samples"):
    audio_inference.decode(model, params, z, 2049, jax.random.key(0))


def write_clip(voices_dir, split, index, path):
  clips = batching.preload(corpora.load_split("voices", "small", split, voices_dir))
  pcm = clips.samples[clips.starts[index]:clips.starts[index] + clips.lengths[index]]
  dsp.save_audio(path, dsp.from_int16(pcm), audio.SAMPLE_RATE)
  return dsp.load_audio(path, audio.SAMPLE_RATE)


def test_interpolate_writes_steps_figure_and_latents_from_the_encodings(smoke_run, voices_dir, tmp_path):
  clip_a = write_clip(voices_dir, "validation", 0, tmp_path / "a.wav")
  clip_b = write_clip(voices_dir, "validation", 1, tmp_path / "b.wav")
  out = tmp_path / "path"
  interpolate.main(["--checkpoint", smoke_run, "--a", str(tmp_path / "a.wav"), "--b", str(tmp_path / "b.wav"),
                    "--steps", "3", "--mode", "slerp", "--seconds", "0.05", "--crop", "2048", "--out", str(out)])
  assert sorted(os.listdir(out)) == ["path.json", "path.png"] + [f"step_0{i}.{e}" for i in range(3) for e in ("png", "wav")]
  assert dsp.load_audio(out / "step_01.wav", audio.SAMPLE_RATE).shape == (800,)
  result = json.load(open(out / "path.json"))
  model, params, labels = audio_inference.load_vlae(smoke_run)
  encodings = audio_inference.encode(model, params, np.stack([audio_inference.central_crop(clip_a, 2048),
                                                    audio_inference.central_crop(clip_b, 2048)])).mean
  np.testing.assert_allclose(result["latents"][0], encodings[0], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(result["latents"][-1], encodings[1], rtol=1e-6, atol=1e-7)
  assert len(result["median_f0_hz"]) == 3

  genders = tmp_path / "genders"
  interpolate.main(["--checkpoint", smoke_run, "--from-gender", "male", "--to-gender", "female", "--steps", "2",
                    "--mode", "lerp", "--seconds", "0.02", "--crop", "2048", "--data-dir", voices_dir,
                    "--out", str(genders)])
  means = gender_means(model, params, labels, 2048, 8, voices_dir)
  latents = json.load(open(genders / "path.json"))["latents"]
  np.testing.assert_allclose(latents[0], means["male"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(latents[1], means["female"], rtol=1e-5, atol=1e-6)


def test_sample_vlae_writes_audio_and_pictures(smoke_run, tmp_path):
  sample_vlae.main(["--checkpoint", smoke_run, "--num", "2", "--seconds", "0.02", "--out", str(tmp_path)])
  assert sorted(os.listdir(tmp_path)) == [f"sample_0{i}.{e}" for i in range(2) for e in ("png", "wav")]
  assert dsp.load_audio(tmp_path / "sample_00.wav", audio.SAMPLE_RATE).shape == (320,)


@pytest.fixture(scope="module")
def bad_clips(tmp_path_factory):
  """Paths of a clip shorter than the encoder's STFT frame, a silent clip and a good clip."""
  folder = tmp_path_factory.mktemp("bad_clips")
  dsp.save_audio(folder / "short.wav", tone(200.0, 500, 0), audio.SAMPLE_RATE)
  dsp.save_audio(folder / "silent.wav", np.zeros(4000, np.float32), audio.SAMPLE_RATE)
  dsp.save_audio(folder / "good.wav", tone(200.0, 4000, 0), audio.SAMPLE_RATE)
  return {name: str(folder / f"{name}.wav") for name in ("short", "silent", "good")}


@pytest.mark.parametrize("args,phrase", [
    (["--a", "{short}", "--b", "{good}"], "500 samples (0.031 s) is shorter than the encoder needs (1024 samples"),
    (["--a", "{good}", "--b", "{silent}"], "the clip is silent"),
    (["--a", "{good}", "--b", "{good}", "--steps", "1"], "--steps must be at least 2"),
    (["--a", "{good}", "--to-gender", "robot"], "--to-gender robot: unknown gender; known: female, male"),
    (["--a", "{good}", "--b", "{good}", "--seconds", "0"], "--seconds: must be > 0"),
    (["--a", "{good}", "--b", "{good}", "--crop", "10"], "--crop 10: the encoder needs at least 1024 samples"),
    (["--a", "{good}", "--b", "{good}", "--seconds", "0.1", "--crop", "1024"],
     "1600 samples (0.100 s) to decode, but z holds 1 local latent frames covering 1024 samples"),
    (["--a", "{good}"], "one of the arguments --b --to-gender is required"),
])
def test_interpolate_bad_input_is_one_line_and_exit_2(smoke_run, bad_clips, tmp_path, capsys, args, phrase):
  args = [arg.format(**bad_clips) for arg in args]
  with pytest.raises(SystemExit) as exit_info:
    cli.run(interpolate.main, ["--checkpoint", smoke_run, "--out", str(tmp_path / "out"), *args])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and phrase in error
  assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


@pytest.mark.parametrize("module", [interpolate, sample_vlae])
def test_checkpoint_of_another_model_is_one_line_and_exit_2(bad_clips, tmp_path, capsys, module):
  args = ["--a", bad_clips["good"], "--b", bad_clips["good"]] if module is interpolate else []
  with pytest.raises(SystemExit) as exit_info:
    cli.run(module.main, ["--checkpoint", pretrained.SHIPPED_CHECKPOINT, "--out", str(tmp_path), *args])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and "not an audio VLAE checkpoint" in error
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_unknown_config_variant_is_one_line_and_exit_2(tmp_path):
  done = subprocess.run([sys.executable, "-m", "experiments.train_vlae", "--config",
                         "experiments/configs/vlae_voices.py:foo", "--workdir", str(tmp_path / "run")],
                        capture_output=True, text=True, check=False)
  assert done.returncode == 2 and done.stderr.count("\n") == 1
  assert "unknown variant 'foo'; known: small, medium, deep, smoke" in done.stderr
  assert not os.path.exists(tmp_path / "run")


def test_eval_vlae_command_prints_the_row_and_refuses_bad_sizes(smoke_run, voices_dir, capsys):
  cli.run(eval_vlae.main, ["--workdir", smoke_run, "--data-dir", voices_dir, "--batch-size", "4"])
  rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {smoke_run} |")]
  written = read_json(os.path.join(smoke_run, "eval.json"))
  assert len(rows) == 1 and f"| {written['validation_bits_per_sample']:.3f} |" in rows[0]
  for bad in (["--crop", "0"], ["--batch-size", "0"]):
    with pytest.raises(SystemExit) as exit_info:
      cli.run(eval_vlae.main, ["--workdir", smoke_run, "--data-dir", voices_dir, *bad])
    assert exit_info.value.code == 2 and "must be positive" in capsys.readouterr().err
