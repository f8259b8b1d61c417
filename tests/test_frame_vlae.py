"""The frame-rate VLAE: ELBO terms in closed form, the decoder's use of z, interpolation through the vocoder."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import cli, interpolate
from frameprior import model as prior_lib
from vlae import frame_vlae

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
  drawn = np.asarray(frame_vlae.decode(blind, params, z, 9, jax.random.key(5), 1e-6))
  zero_input = model.apply(params, jnp.zeros_like(frames), z, method=frame_vlae.FrameVlae.decode_output)
  channels = np.arange(27) != prior_lib.VOICING_CHANNEL
  np.testing.assert_allclose(drawn[..., channels], np.asarray(zero_input.mean)[..., channels], atol=1e-4)
  sighted = np.asarray(frame_vlae.decode(frame_vlae.FrameVlae(**TINY), params, z, 9,
                                         jax.random.key(5), 1e-6))
  assert np.abs(sighted[..., channels] - drawn[..., channels]).max() > 1e-3


def test_decoding_a_path_gives_one_features_per_step_with_pauses(tiny):
  model, params, _, _ = tiny
  path = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], np.float32)
  features = frame_vlae.decode_to_features(model, params, path, 25, jax.random.key(0), 0.7, 8, 2)
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
