"""The frame-rate VLAE: ELBO terms in closed form, the decoder's use of z, interpolation through the vocoder."""

import json
import os

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

import dsp
from common import cli
from dsp import frames as frames_lib
from experiments import eval_frame_vlae, interpolate, sample_vlae
from frameprior import model as prior_lib
from vlae import frame_evaluation, frame_inference, frame_vlae, probe

TINY = dict(frame_channels=27, latent_channels=3, encoder_channels=8, hidden_channels=8, embedding_channels=4,
            decoder_input_dropout=0.0)


@pytest.fixture(scope="module")
def tiny():
  model = frame_vlae.FrameVlae(**TINY)
  frames = jax.random.normal(jax.random.key(1), (2, 9, 27))
  mask = jnp.ones((2, 9)).at[1, 6:].set(0.0)
  params = model.init(jax.random.key(0), frames, mask, jax.random.key(2))
  params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(x.size), x.shape), params)
  return model, params, frames, mask


def test_kl_is_the_closed_form_and_free_bits_floor_each_dimension(tiny):
  model, params, frames, mask = tiny
  out = model.apply(params, frames, mask, jax.random.key(3), 0.0)
  mean, log_std = (np.asarray(x, np.float64) for x in model.apply(params, frames, mask,
                                                                  method=frame_vlae.FrameVlae.encode))
  kl = 0.5 * np.sum(mean ** 2 + np.exp(2 * log_std) - 1 - 2 * log_std, axis=1)
  np.testing.assert_allclose(out.kl, kl, rtol=1e-4, atol=1e-6)
  floored = model.apply(params, frames, mask, jax.random.key(3), 10.0).kl_free_bits
  np.testing.assert_allclose(floored, 10.0 * TINY["latent_channels"], rtol=1e-6)
  np.testing.assert_array_equal(out.frames, [9.0, 6.0])


def test_reconstruction_is_the_decoders_likelihood_of_the_real_frames_given_z(tiny):
  model, params, frames, mask = tiny
  key = jax.random.key(4)
  out = model.apply(params, frames, mask, key, 0.0)
  mean, log_std = model.apply(params, frames, mask, method=frame_vlae.FrameVlae.encode)
  z = mean + jnp.exp(log_std) * jax.random.normal(jax.random.split(key)[0], mean.shape)
  previous = jnp.pad(frames[:, :-1], ((0, 0), (1, 0), (0, 0)))
  output = model.apply(params, previous, z, method=frame_vlae.FrameVlae.decode_output)
  expected = np.sum(np.asarray(prior_lib.log_likelihood(output, frames)) * np.asarray(mask), axis=1)
  np.testing.assert_allclose(out.reconstruction, expected, rtol=1e-5)
  other = model.apply(params, previous, z + 1.0, method=frame_vlae.FrameVlae.decode_output)
  assert np.abs(np.asarray(other.mean - output.mean)).max() > 1e-3


def test_input_dropout_blanks_the_previous_frames_of_the_reconstruction_and_of_decoding(tiny):
  _, params, frames, mask = tiny
  model = frame_vlae.FrameVlae(**dict(TINY, decoder_input_dropout=0.5))
  key = jax.random.key(4)
  out = model.apply(params, frames, mask, key, 0.0)
  z_key, dropout_key = jax.random.split(key)
  mean, log_std = model.apply(params, frames, mask, method=frame_vlae.FrameVlae.encode)
  z = mean + jnp.exp(log_std) * jax.random.normal(z_key, mean.shape)
  previous = jnp.pad(frames[:, :-1], ((0, 0), (1, 0), (0, 0)))
  keep = jax.random.bernoulli(dropout_key, 0.5, previous.shape[:2])
  assert 0 < keep.mean() < 1
  blanked = model.apply(params, jnp.where(keep[..., None], previous, 0.0), z,
                        method=frame_vlae.FrameVlae.decode_output)
  expected = np.sum(np.asarray(prior_lib.log_likelihood(blanked, frames)) * np.asarray(mask), axis=1)
  np.testing.assert_allclose(out.reconstruction, expected, rtol=1e-5)
  # Decoding with (almost) every previous frame blanked draws each frame from the zero-input pass's means.
  blind = frame_vlae.FrameVlae(**dict(TINY, decoder_input_dropout=1.0 - 1e-7))
  drawn = np.asarray(frame_inference.decode(blind, params, z, 9, jax.random.key(5), 1e-6))
  zero_input = model.apply(params, jnp.zeros_like(frames), z, method=frame_vlae.FrameVlae.decode_output)
  channels = np.arange(27) != prior_lib.VOICING_CHANNEL
  np.testing.assert_allclose(drawn[..., channels], np.asarray(zero_input.mean)[..., channels], atol=1e-4)
  sighted = np.asarray(frame_inference.decode(frame_vlae.FrameVlae(**TINY), params, z, 9,
                                         jax.random.key(5), 1e-6))
  assert np.abs(sighted[..., channels] - drawn[..., channels]).max() > 1e-3


def test_decoding_a_path_gives_one_features_per_step_with_pauses(tiny):
  model, params, _, _ = tiny
  path = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], np.float32)
  features = frame_inference.decode_to_features(model, params, path, 25, jax.random.key(0), 0.7, 8, 2)
  assert len(features) == 2 and all(len(f.log_f0) == 25 for f in features)
  for f in features:
    np.testing.assert_array_equal(f.voiced[8:10], 0.0)  # the pause after the first phrase


@pytest.fixture(scope="module")
def smoke_models(smoke_workdir):
  """A frame VLAE and a source-filter vocoder trained 2 steps each on voices/small."""
  return (smoke_workdir("train_frame_vlae", "frame_vlae_voices"),
          smoke_workdir("train_vocoder", "source_filter_voices"))


def test_interpolate_between_two_recordings_writes_steps_and_the_f0_path(smoke_models, tmp_path, capsys):
  import soundfile as sf
  vlae_dir, vocoder_dir = smoke_models
  t = np.arange(8000) / 16000
  for name, f0 in (("a.wav", 110.0), ("b.wav", 220.0)):
    sf.write(tmp_path / name, 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t), 16000)
  out = tmp_path / "path"
  interpolate.main(["--checkpoint", vlae_dir, "--vocoder", vocoder_dir, "--a", str(tmp_path / "a.wav"),
                    "--b", str(tmp_path / "b.wav"), "--steps", "3", "--seconds", "0.5", "--out", str(out)])
  printed = capsys.readouterr().out
  assert "Spearman" in printed and "a.wav 110" in printed
  for step in range(3):
    assert (out / f"step_{step:02d}.wav").exists() and (out / f"step_{step:02d}.png").exists()
  assert (out / "f0_path.png").exists() and (out / "path.json").exists()


def test_training_records_the_band_statistics_and_export_can_add_them(smoke_models, voices_dir, tmp_path, capsys):
  from experiments import export_model
  from frameprior.train import load_frames
  from training.checkpoint import load_model_config
  from vlae import band_fill
  vlae_dir, vocoder_dir = smoke_models
  labels = load_model_config(vlae_dir)[1]
  recorded = labels["band_statistics"]
  _, _, vectors = load_frames(frame_evaluation.corpus_of(labels, voices_dir), "train")
  np.testing.assert_allclose(recorded["voiced"]["covariance"], band_fill.fit(vectors)["voiced"]["covariance"],
                             rtol=1e-9)
  export_model.main(["--checkpoint", vlae_dir, "--out", str(tmp_path / "exported"), "--band-statistics",
                     "--data-dir", voices_dir])
  assert "with the band statistics of" in capsys.readouterr().out
  assert load_model_config(str(tmp_path / "exported"))[1]["band_statistics"] == recorded
  with pytest.raises(SystemExit) as exit_info:
    cli.run(export_model.main, ["--checkpoint", vocoder_dir, "--out", str(tmp_path / "voc"), "--band-statistics"])
  assert exit_info.value.code == 2 and "not a frame-rate VLAE" in capsys.readouterr().err
  assert not (tmp_path / "voc").exists()


def test_interpolate_bad_input_is_one_line_and_exit_2(smoke_models, tmp_path, capsys):
  import soundfile as sf
  vlae_dir, vocoder_dir = smoke_models
  sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
  sf.write(tmp_path / "short.wav", 0.3 * np.sin(np.arange(1000) / 10.0), 16000)
  cases = [(["--a", str(tmp_path / "silent.wav"), "--b", str(tmp_path / "silent.wav")], "silent"),
           (["--a", str(tmp_path / "short.wav"), "--b", str(tmp_path / "short.wav")], "at least"),
           (["--a", str(tmp_path / "short.wav"), "--b", str(tmp_path / "short.wav"), "--steps", "1"], "--steps")]
  for args, phrase in cases:
    with pytest.raises(SystemExit) as exit_info:
      cli.run(interpolate.main, ["--checkpoint", vlae_dir, "--vocoder", vocoder_dir, *args,
                                 "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1
  assert not (tmp_path / "never").exists()


def test_sample_vlae_draws_from_the_frame_vlae_prior_through_the_vocoder(smoke_models, tmp_path, capsys):
  vlae_dir, vocoder_dir = smoke_models
  sample_vlae.main(["--checkpoint", vlae_dir, "--vocoder", vocoder_dir, "--num", "2", "--seconds", "0.3",
                    "--out", str(tmp_path / "prior")])
  assert sorted(os.listdir(tmp_path / "prior")) == [f"sample_0{i}.{e}" for i in range(2) for e in ("png", "wav")]
  assert dsp.load_audio(tmp_path / "prior" / "sample_01.wav", 16000).shape == (4800,)
  assert "voiced %" in capsys.readouterr().out
  with pytest.raises(SystemExit) as exit_info:
    cli.run(sample_vlae.main, ["--checkpoint", vlae_dir, "--vocoder", vocoder_dir, "--out", str(tmp_path / "x.wav")])
  assert exit_info.value.code == 2 and "give a folder path" in capsys.readouterr().err
  assert not (tmp_path / "x.wav").exists()


def test_eval_frame_vlae_prints_baselines_and_the_model_and_writes_json(smoke_models, voices_dir, tmp_path, capsys):
  vlae_dir, vocoder_dir = smoke_models
  out = tmp_path / "eval.json"
  eval_frame_vlae.main(["--checkpoint", vlae_dir, "--unseen-per-voice", "1", "--batches", "1",
                        "--data-dir", voices_dir, "--out", str(out)])
  table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
  assert [line.split(" | ")[0] for line in table[1:]] == ["| untrained encoder", "| mean log-mel", f"| {vlae_dir}"]
  with open(out) as file:
    result = json.load(file)
  assert result["unheard_utterances"] > 7  # the small corpus's held-out speakers plus one per unseen variant
  model_row = result["rows"][2]
  assert model_row["decoder_input_dropout"] == 0.5 and np.isfinite(model_row["negative_elbo_bits_per_frame"])
  assert np.isfinite(model_row["z_gain_bits_per_frame"])
  assert model_row["negative_elbo_bits_per_frame"] >= model_row["reconstruction_bits_per_frame"]  # KL >= 0
  assert [set(row) >= {"pitch_r2", "gender_accuracy", "speaker_accuracy"} for row in result["rows"]] == [True] * 3
  with pytest.raises(SystemExit) as exit_info:
    cli.run(eval_frame_vlae.main, ["--checkpoint", vocoder_dir, "--data-dir", voices_dir])
  assert exit_info.value.code == 2 and "not a frame-rate VLAE checkpoint" in capsys.readouterr().err


def test_pitch_shift_moves_each_windows_log_f0_as_a_whole():
  from vlae.train_frames import shift_pitch
  from vocoder import features as features_lib
  frames = np.random.default_rng(0).normal(size=(4, 6, 27)).astype(np.float32)
  shifted = shift_pitch(frames, np.random.default_rng(1), 4.0)
  np.testing.assert_array_equal(shifted[..., 1:], frames[..., 1:])
  delta = (shifted[..., 0] - frames[..., 0]) * features_lib.LOG_F0_SCALE * 12 / np.log(2.0)  # semitones
  np.testing.assert_allclose(delta, delta[:, :1] * np.ones((1, 6)), atol=1e-4)
  assert np.all(np.abs(delta) <= 4.0) and np.std(delta[:, 0]) > 0.5
  np.testing.assert_array_equal(shift_pitch(frames, np.random.default_rng(1), 0.0), frames)


def test_band_limiting_silences_the_bands_above_the_cutoff_of_a_share_of_the_windows():
  from vlae.train_frames import limit_band
  from vocoder import features as features_lib
  centres = frames_lib.mel_band_centres(16000)
  filters = librosa.filters.mel(sr=16000, n_fft=640, n_mels=frames_lib.NUM_MELS)
  np.testing.assert_allclose(centres, np.argmax(filters, axis=1) * 16000 / 640, atol=16000 / 640)  # within a bin
  frames = np.random.default_rng(0).normal(size=(400, 3, 27)).astype(np.float32)
  limited = limit_band(frames, np.random.default_rng(1), 0.25, (4000.0, 4000.0))
  silent = features_lib.frame_vectors(frames_lib.FrameFeatures(
      np.zeros(1, np.float32), np.zeros(1, np.float32), np.full((1, frames_lib.NUM_MELS), features_lib.SILENT_LOG_MEL),
      np.zeros(1, np.float32), np.zeros(1, np.float32)))[0, 3:]
  changed = np.any(limited != frames, axis=(1, 2))
  assert 0.2 < changed.mean() < 0.3
  np.testing.assert_array_equal(limited[~changed], frames[~changed])
  np.testing.assert_array_equal(limited[changed][..., :3 + np.sum(centres <= 4000)],
                                frames[changed][..., :3 + np.sum(centres <= 4000)])
  np.testing.assert_allclose(limited[changed][..., 3 + np.sum(centres <= 4000):],
                             np.broadcast_to(silent[centres > 4000], (changed.sum(), 3, np.sum(centres > 4000))),
                             atol=1e-6)
  np.testing.assert_array_equal(limit_band(frames, np.random.default_rng(1), 0.0, (4000.0, 4000.0)), frames)


def test_untrained_parameters_draw_the_zero_initialised_output_layer_and_nothing_else():
  model = frame_vlae.FrameVlae(**TINY)
  initial = model.init(jax.random.key(0), jnp.zeros((1, 10, 27)), jnp.ones((1, 10)), jax.random.key(0))
  untrained = frame_evaluation.untrained_parameters(model, seed=0)
  leaves = lambda tree: jax.tree_util.tree_flatten_with_path(tree)[0]
  changed = [jax.tree_util.keystr(path) for (path, a), (_, b) in zip(leaves(initial), leaves(untrained))
             if not np.array_equal(a, b)]
  assert changed == ["['params']['encoder']['Dense_1']['kernel']"]
  frames = jax.random.normal(jax.random.key(1), (3, 12, 27))
  mean, _ = model.apply(untrained, frames, jnp.ones((3, 12)), method=frame_vlae.FrameVlae.encode)
  assert np.all(np.asarray(model.apply(initial, frames, jnp.ones((3, 12)), method=frame_vlae.FrameVlae.encode)[0]) == 0)
  assert np.abs(np.asarray(mean[0] - mean[1])).max() > 1e-3  # Distinct inputs, distinct means.


def test_pitch_probe_r2_is_high_for_a_linear_code_and_near_zero_for_noise():
  rng = np.random.default_rng(0)
  target = rng.normal(5.0, 0.3, 300)
  coded = np.stack([target, rng.normal(size=300), rng.normal(size=300)], axis=1) @ rng.normal(size=(3, 6))
  noise = rng.normal(size=(300, 6))
  assert probe.r2_probe(coded[:200], target[:200], coded[200:], target[200:]) > 0.99
  assert probe.r2_probe(noise[:200], target[:200], noise[200:], target[200:]) < 0.1


def test_probe_utterances_keep_those_with_enough_voiced_frames_and_their_median_log_f0():
  def features(f0s, voiced):
    n = len(f0s)
    return frames_lib.FrameFeatures(np.log(np.asarray(f0s, np.float32)), np.asarray(voiced, np.float32),
                                    np.zeros((n, frames_lib.NUM_MELS), np.float32), np.zeros(n, np.float32),
                                    np.zeros(n, np.float32))
  many = frame_evaluation.MIN_VOICED_FRAMES
  clips = [features([100.0] * many + [300.0] * 5, [1] * many + [0] * 5),  # the unvoiced 300 Hz frames are ignored
           features([200.0] * (many - 1), [1] * (many - 1))]  # too few voiced frames: left out
  utterances = frame_evaluation._utterances(clips, [0, 1], [3, 4])
  assert len(utterances.features) == 1 and utterances.gender.tolist() == [0] and utterances.speaker.tolist() == [3]
  np.testing.assert_allclose(utterances.median_log_f0, [np.log(100.0)], rtol=1e-6)
  both = frame_evaluation.concatenate(utterances, utterances)
  assert both.speaker.tolist() == [3, 7]  # Speaker ids of the second set shifted past the first's.


def test_band_fill_gives_each_missing_band_its_conditional_mean_per_voicing_class():
  from vlae import band_fill
  rng = np.random.default_rng(0)
  channels, observed = 3 + 4, 2  # log-F0, voiced, energy and 4 bands, of which the lowest 2 are held
  covariances, means, frames = {}, {}, []
  for voiced in (0.0, 1.0):
    root = rng.normal(size=(channels, channels))
    covariances[voiced] = root @ root.T + np.eye(channels)
    means[voiced] = rng.normal(size=channels) * 3
    drawn = rng.multivariate_normal(means[voiced], covariances[voiced], 40000)
    drawn[:, 1] = voiced
    frames.append(drawn)
  frames = np.concatenate(frames).astype(np.float32)
  statistics = band_fill.fit(frames)
  json.dumps(statistics)  # kept in a checkpoint's JSON labels
  queries = frames[rng.choice(len(frames), 200)]
  filled = band_fill.fill(queries, observed, statistics)
  given, missing = [2, 3, 4], [5, 6]
  conditional = lambda mean, cov, x: mean[missing] + (x[:, given] - mean[given]) @ np.linalg.solve(
      cov[np.ix_(given, given)], cov[np.ix_(given, missing)])
  for voiced in (0.0, 1.0):  # The conditional mean under each frame's own class: as fitted, and close to the truth.
    rows, own = queries[:, 1] == voiced, frames[frames[:, 1] == voiced].astype(np.float64)
    np.testing.assert_allclose(filled[rows][:, missing],
                               conditional(own.mean(0), np.cov(own, rowvar=False), queries[rows]), atol=1e-3)
    np.testing.assert_allclose(filled[rows][:, missing],
                               conditional(means[voiced], covariances[voiced], queries[rows]), atol=0.3)
    wrong_class = conditional(means[1.0 - voiced], covariances[1.0 - voiced], queries[rows])
    assert np.abs(filled[rows][:, missing] - wrong_class).mean() > 1.0
  np.testing.assert_array_equal(filled[:, :5], queries[:, :5])
  np.testing.assert_array_equal(band_fill.fill(queries, 4, statistics), queries)


def test_a_band_limited_recording_is_encoded_with_its_missing_bands_filled_in(tiny):
  from vlae import band_fill
  from vocoder import features as features_lib
  model, params = tiny[:2]
  rate = 16000
  t = np.arange(rate) / rate
  voice = lambda top: (0.1 * sum(np.cos(2 * np.pi * 120 * k * t) / k for k in range(1, int(top / 120)))).astype(
      np.float32)
  narrow = librosa.resample(librosa.resample(voice(7900), orig_sr=rate, target_sr=8000), orig_sr=8000, target_sr=rate)
  statistics = band_fill.fit(np.random.default_rng(0).normal(size=(500, 27)).astype(np.float32))
  for audio, expect_filled in ((voice(7900), False), (narrow, True)):
    features = frames_lib.frame_features(audio, rate)
    plain = frame_inference.encode_features(model, params, [features])[0]
    bare = frame_inference.encode_recording(model, params, {}, audio, features)
    assert not bare.filled
    np.testing.assert_array_equal(bare.mean, plain)
    encoded = frame_inference.encode_recording(model, params, {"band_statistics": statistics}, audio, features)
    assert encoded.filled == expect_filled and (encoded.observed_bands < frames_lib.NUM_MELS) == expect_filled
    if expect_filled:
      vectors = band_fill.fill(features_lib.frame_vectors(features), encoded.observed_bands, statistics)
      np.testing.assert_allclose(encoded.mean, frame_inference.encode_vectors(model, params, [vectors])[0], rtol=1e-6)
      assert np.abs(encoded.mean - plain).max() > 1e-4
    else:
      np.testing.assert_array_equal(encoded.mean, plain)
