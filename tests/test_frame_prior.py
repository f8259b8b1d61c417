"""The frame prior: step-wise against layer-wise (the contract), its likelihood, windows, sampling, garble."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from common import cli
from dsp import frames as frames_lib
from experiments import sample_garble
from frameprior import model as prior_lib
from frameprior import train as train_lib
from vocoder import features as features_lib

TINY = dict(frame_channels=5, hidden_channels=8, num_speakers=3, num_genders=2, embedding_channels=4)


@pytest.fixture(scope="module")
def tiny_prior():
  model = prior_lib.FramePrior(**TINY)
  frames = jax.random.normal(jax.random.key(1), (2, 7, 5))
  ids = (jnp.array([2, -1]), jnp.array([0, 1]))
  params = model.init(jax.random.key(0), frames, *ids)
  # A non-zero output layer, so that the test also covers it.
  params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(x.size), x.shape), params)
  return model, params, frames, ids


def test_steps_equal_the_teacher_forced_pass(tiny_prior):
  model, params, frames, (speaker, gender) = tiny_prior
  whole = model.apply(params, frames, speaker, gender)
  condition = model.apply(params, speaker, gender, method=prior_lib.FramePrior.condition)
  state = model.apply(params, condition, method=prior_lib.FramePrior.initial_state)
  for t in range(frames.shape[1]):
    state, out = model.apply(params, state, frames[:, t], condition, method=prior_lib.FramePrior.step)
    for got, expected in zip(out, whole):
      np.testing.assert_allclose(got, expected[:, t], atol=1e-5)


def test_conditioning_changes_the_prediction_and_absent_ids_add_nothing(tiny_prior):
  model, params, frames, _ = tiny_prior
  mean = lambda speaker, gender: np.asarray(model.apply(params, frames, jnp.array(speaker), jnp.array(gender)).mean)
  assert np.abs(mean([0, 0], [0, 0]) - mean([1, 1], [0, 0])).max() > 1e-3
  assert np.abs(mean([-1, -1], [0, 0]) - mean([-1, -1], [1, 1])).max() > 1e-3
  no_speaker = model.apply(params, jnp.array([-1, -1]), jnp.array([0, 0]), method=prior_lib.FramePrior.condition)
  gender_only = params["params"]["gender_embedding"][0]
  np.testing.assert_allclose(no_speaker, np.stack([gender_only] * 2), atol=1e-7)


def test_log_likelihood_is_bernoulli_voicing_plus_gaussian_channels():
  rng = np.random.default_rng(0)
  frames = rng.normal(size=(2, 3, 4)).astype(np.float32)
  frames[..., prior_lib.VOICING_CHANNEL] = rng.integers(0, 2, (2, 3))
  output = prior_lib.PriorOutput(jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
                                 jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32),
                                 jnp.asarray(rng.normal(0, 0.3, (2, 3, 4)), jnp.float32))
  got = np.asarray(prior_lib.log_likelihood(output, jnp.asarray(frames)))
  p = 1 / (1 + np.exp(-np.asarray(output.voicing_logit, np.float64)))
  voiced = frames[..., 1]
  expected = np.log(np.where(voiced > 0, p, 1 - p))
  for c in (0, 2, 3):
    expected += scipy.stats.norm.logpdf(frames[..., c], output.mean[..., c], np.exp(output.log_std[..., c]))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_sampling_is_seeded_and_continues_a_prime(tiny_prior):
  model, params, frames, (speaker, gender) = tiny_prior
  draw = lambda key, prime=None: np.asarray(prior_lib.sample(model, params, jax.random.key(key), 6, speaker, gender,
                                                              0.5, prime))
  first = draw(0)
  assert first.shape == (2, 6, 5)
  assert set(np.unique(first[..., prior_lib.VOICING_CHANNEL])) <= {0.0, 1.0}
  np.testing.assert_array_equal(first, draw(0))
  assert not np.array_equal(first, draw(1))
  assert not np.array_equal(draw(0, frames), first)


def test_frame_windows_mask_the_padding_of_short_clips():
  vectors = np.arange(30, dtype=np.float32).reshape(10, 3)
  starts, counts = np.array([0, 4]), np.array([4, 6])
  batch = train_lib.frame_windows(vectors, starts, counts, np.array([0, 1]), np.array([1, 0]),
                                  np.random.default_rng(0), 16, 5)
  for frames, mask, speaker in zip(batch["frames"], batch["mask"], batch["speaker"]):
    if speaker == 0:  # the 4-frame clip: all of it, then one padded frame
      np.testing.assert_array_equal(mask, [1, 1, 1, 1, 0])
      np.testing.assert_array_equal(frames[:4], vectors[:4])
      np.testing.assert_array_equal(frames[4], 0.0)
    else:
      assert mask.all() and frames[0, 0] in (12.0, 15.0)  # starts at frame 4 or 5
  again = train_lib.frame_windows(vectors, starts, counts, np.array([0, 1]), np.array([1, 0]),
                                  np.random.default_rng(0), 16, 5)
  np.testing.assert_array_equal(batch["frames"], again["frames"])


def test_vectors_and_features_invert_each_other():
  rng = np.random.default_rng(0)
  count = 6
  features = frames_lib.FrameFeatures(
      log_f0=np.log(rng.uniform(80, 250, count)).astype(np.float32), voiced=rng.integers(0, 2, count).astype(np.float32),
      log_mel=rng.normal(-6, 3, (count, frames_lib.NUM_MELS)).astype(np.float32),
      energy=rng.normal(-4, 1, count).astype(np.float32), phase=np.zeros(count, np.float32))
  back = features_lib.features_from_vectors(features_lib.frame_vectors(features))
  for got, expected in zip(back, features):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def smoke_prior(smoke_workdir):
  """A frame prior and a source-filter vocoder trained 2 steps each on voices/small."""
  return (smoke_workdir("train_frame_prior", "frame_prior_voices"),
          smoke_workdir("train_vocoder", "source_filter_voices"))


def test_garble_frames_mode_writes_audio_and_the_table(smoke_prior, tmp_path, capsys):
  prior, vocoder = smoke_prior
  sample_garble.main(["--checkpoint", prior, "--vocoder", vocoder, "--num", "1", "--seconds", "0.5",
                      "--out", str(tmp_path / "g"), "--seed", "3"])
  printed = capsys.readouterr().out
  assert "female: " in printed and "male: " in printed and "of active" in printed
  for name in ("female_00", "male_00"):
    assert (tmp_path / "g" / f"{name}.wav").exists() and (tmp_path / "g" / f"{name}.png").exists()


def test_garble_refuses_a_checkpoint_of_the_other_route(smoke_prior, tmp_path, capsys):
  prior, vocoder = smoke_prior
  for args in (["--mode", "direct", "--checkpoint", prior], ["--mode", "frames", "--checkpoint", vocoder]):
    with pytest.raises(SystemExit) as exit_info:
      cli.run(sample_garble.main, args + ["--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
  assert not (tmp_path / "never").exists()
