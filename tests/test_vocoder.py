"""The vocoder: conditioning alignment, the excitation input, the source-filter baseline, metrics, synthesis."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import cli
from common.errors import InputError
from corpora import batching
from dsp import excitation as excitation_lib
from dsp import frames as frames_lib
from experiments import eval_vocoder, vocode
from vocoder import features as features_lib
from vocoder import metrics, source_filter, synthesis
from vocoder import train as train_lib
from wavenet.model import WaveNet

SR = 16000
HOP = 160
TINY_VOCODER = dict(num_stacks=1, layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=16,
                    head_channels=16, num_classes=256, global_categories=(("speaker", 2),),
                    local_channels=features_lib.LOCAL_CHANNELS, local_hop=1, local_upsampling="repeat",
                    local_upsample_strides=(1,), excitation_channels=excitation_lib.NUM_CHANNELS)


def tone_clip(f0=140.0, seconds=0.6, onset=0.2):
  """Silence, then a harmonic tone from `onset` seconds on."""
  n, start = int(seconds * SR), int(onset * SR)
  t = np.arange(n - start) / SR
  audio = np.zeros(n, np.float32)
  audio[start:] = 0.3 * sum(np.cos(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
  return audio


@pytest.fixture(scope="module")
def clip_features():
  return frames_lib.frame_features(tone_clip(), SR)


def test_a_window_is_the_slice_of_its_clips_conditioning(clip_features):
  whole_local, whole_source = features_lib.window_conditioning(clip_features, 0, 9000, SR)
  local, source = features_lib.window_conditioning(clip_features, 3217, 1500, SR)
  np.testing.assert_allclose(local, whole_local[3217:4717], atol=1e-5)
  np.testing.assert_allclose(source, whole_source[3217:4717], atol=1e-4)


def test_samples_outside_the_clip_condition_on_silence(clip_features):
  local, source = features_lib.window_conditioning(clip_features, -500, 400, SR)
  np.testing.assert_array_equal(local[:, 1], 0.0)
  np.testing.assert_allclose(local[:, 2], (features_lib.SILENT_ENERGY - features_lib.ENERGY_CENTRE)
                             / features_lib.ENERGY_SCALE, rtol=1e-6)
  np.testing.assert_array_equal(source, 0.0)


def test_training_windows_condition_each_input_on_the_sample_it_predicts(clip_features):
  audio = tone_clip()
  clips = batching.Clips(samples=(audio * 32767).astype(np.int16), starts=np.array([0]),
                         lengths=np.array([len(audio)]), speaker=np.array([0], np.int32),
                         gender=np.array([0], np.int32))
  split_frames = features_lib.SplitFrames(clip_features, np.array([0]), np.array([len(clip_features.log_f0)]))
  context, crop, end = 100, 300, 5000
  batch = train_lib._conditioned_windows(clips, split_frames, np.array([0]), np.array([end]), context, crop,
                                         autoregressive=True)
  assert batch["codes"].shape == (1, context + crop)
  assert batch["local"].shape == (1, context + crop - 1, features_lib.LOCAL_CHANNELS)
  first_input = end - context - crop  # input position i predicts clip sample first_input + i + 1
  predicted = first_input + 1 + np.arange(context + crop - 1)
  np.testing.assert_array_equal(batch["local"][0, :, 1], clip_features.voiced[predicted // HOP])


def test_the_excitation_reaches_only_the_predictions_at_and_after_it():
  model = WaveNet(**TINY_VOCODER)
  length = 30
  codes = jnp.zeros((1, length), jnp.int32)
  local = jnp.zeros((1, length, features_lib.LOCAL_CHANNELS))
  source = jnp.zeros((1, length, excitation_lib.NUM_CHANNELS))
  ids = {"speaker": jnp.array([0])}
  params = jax.jit(model.init)(jax.random.key(0), codes, ids, local=local, excitation=source)
  head = jax.jit(lambda excitation: model.apply(params, codes, ids, local=local, excitation=excitation,
                                                padding="causal").head)
  base, moved = head(source), head(source.at[0, 12, 0].set(1.0))
  changed = np.any(np.abs(np.asarray(moved - base)) > 1e-6, axis=-1)[0]
  assert not changed[:12].any() and changed[12]
  with pytest.raises(ValueError, match="needs an excitation"):
    model.apply(params, codes, ids, local=local, padding="causal")


def test_source_filter_harmonics_are_the_sines_of_multiples_of_the_phase():
  model = source_filter.SourceFilter(num_harmonics=6)
  log_f0 = np.log(np.full(8, 1500.0, np.float32))  # harmonics 6 and up lie above Nyquist (8 kHz)
  voiced = np.ones(8, np.float32)
  source = excitation_lib.excitation(log_f0, voiced, HOP, SR)
  local = np.zeros((len(source), features_lib.LOCAL_CHANNELS), np.float32)
  local[:, 0] = (log_f0[0] - features_lib.LOG_F0_CENTRE) / features_lib.LOG_F0_SCALE
  harmonics = model.harmonic_source(jnp.asarray(local)[None], jnp.asarray(source)[None])[0]
  phase = excitation_lib.source_phase(log_f0, voiced, HOP, SR)
  for k in range(1, 6):
    np.testing.assert_allclose(harmonics[:, k - 1], np.sin(k * phase), atol=2e-3)
  np.testing.assert_array_equal(harmonics[:, 5], 0.0)


def test_stft_loss_is_zero_only_for_the_target():
  target = jnp.asarray(np.random.default_rng(0).normal(0, 0.1, (2, 2048)), jnp.float32)
  weight = jnp.ones(2)
  loss, _ = source_filter.multi_resolution_stft_loss(target, target, weight)
  assert float(loss) == pytest.approx(0.0, abs=1e-6)
  louder, _ = source_filter.multi_resolution_stft_loss(target, 1.5 * target, weight)
  assert float(louder) > 0.5


def test_pitch_errors_of_a_copy_and_of_an_octave():
  audio = tone_clip(f0=120.0, seconds=1.0, onset=0.3)
  same = metrics.pitch_errors(audio, audio, SR)
  assert same["vuv_error_pct"] == 0.0 and same["gross_pitch_error_pct"] == 0.0 and same["f0_rmse_cents"] == 0.0
  octave = metrics.pitch_errors(audio, tone_clip(f0=240.0, seconds=1.0, onset=0.3), SR)
  assert octave["gross_pitch_error_pct"] > 90 and 1100 < octave["f0_rmse_cents"] < 1300
  assert metrics.log_spectral_distance(audio, audio, SR) == 0.0
  noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)  # every bin far above the floor
  assert metrics.log_spectral_distance(noise, 0.1 * noise, SR) == pytest.approx(20.0, abs=0.01)


def test_pitch_shift_scales_f0_and_keeps_the_envelope(clip_features):
  shifted = synthesis.shift_pitch(clip_features, semitones=12.0, f0_scale=0.5)
  np.testing.assert_allclose(shifted.log_f0, clip_features.log_f0, atol=1e-6)
  up = synthesis.shift_pitch(clip_features, semitones=7.0)
  np.testing.assert_allclose(np.exp(up.log_f0 - clip_features.log_f0), 2 ** (7 / 12), rtol=1e-5)
  np.testing.assert_array_equal(up.log_mel, clip_features.log_mel)


@pytest.mark.parametrize("kind", ["wavenet", "source_filter"])
def test_vocode_is_deterministic_per_key_and_in_range(clip_features, kind):
  if kind == "wavenet":
    model = WaveNet(**TINY_VOCODER)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32), {"speaker": jnp.zeros((1,), jnp.int32)},
                        local=jnp.zeros((1, 8, features_lib.LOCAL_CHANNELS)),
                        excitation=jnp.zeros((1, 8, excitation_lib.NUM_CHANNELS)))
  else:
    model = source_filter.SourceFilter(channels=4, num_blocks=1, layers_per_block=2, num_harmonics=3)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8, features_lib.LOCAL_CHANNELS)),
                        jnp.zeros((1, 8, 3)), jnp.zeros((1, 8)))
  draw = lambda seed: synthesis.vocode(model, params, [clip_features] * 2, 400, jax.random.key(seed), SR, [0, -1])
  first, again, other = draw(0), draw(0), draw(1)
  assert first.shape == (2, 400) and np.all(np.abs(first) <= 1.0)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_recordings_that_cannot_be_vocoded_are_one_line(tmp_path):
  import soundfile as sf
  cases = {"short.wav": tone_clip(seconds=0.1, onset=0.0), "silent.wav": np.zeros(SR, np.float32),
           "noise.wav": np.random.default_rng(0).uniform(-0.5, 0.5, SR).astype(np.float32)}
  messages = {"short.wav": "at least", "silent.wav": "silent", "noise.wav": "no voiced frame"}
  for name, audio in cases.items():
    sf.write(tmp_path / name, audio, SR)
    with pytest.raises(InputError, match=messages[name]):
      synthesis.analyse_recording(str(tmp_path / name), SR)


@pytest.fixture(scope="module", params=["vocoder_voices", "source_filter_voices"])
def smoke_vocoder(request, smoke_workdir):
  """A workdir trained 2 steps on voices/small by `experiments.train_vocoder` with a smoke config."""
  return smoke_workdir("train_vocoder", request.param)


def test_training_writes_checkpoint_and_free_running_voicing(smoke_vocoder, voices_dir):
  from training.metrics import read_metrics
  names = {name for _, name, _ in read_metrics(smoke_vocoder)}
  assert {"eval/loss", "eval/free_validation_vuv_error_pct", "eval/free_heldout_output_voiced_pct"} <= names
  assert os.path.isfile(features_lib.cache_path("voices", "small", "train", voices_dir))
  model, _, _ = synthesis.load_vocoder(smoke_vocoder)
  assert model is not None


def test_vocode_writes_audio_png_and_the_f0_table(smoke_vocoder, tmp_path, capsys):
  import soundfile as sf
  source = tmp_path / "in.wav"
  stereo = np.stack([tone_clip(seconds=0.5, onset=0.1)] * 2, axis=1)
  sf.write(source, stereo, 22050)  # another rate and two channels
  out = tmp_path / "out.wav"
  vocode.main(["--input", str(source), "--out", str(out), "--checkpoint", smoke_vocoder, "--pitch-shift", "3"])
  printed = capsys.readouterr().out
  assert "input" in printed and "output" in printed
  audio, rate = sf.read(out)
  assert rate == SR and len(audio) == round(len(stereo) * SR / 22050)
  assert (tmp_path / "out.png").stat().st_size > 0


def test_vocode_bad_input_is_one_line_and_nothing_written(smoke_vocoder, tmp_path, capsys):
  from wavenet import pretrained
  import soundfile as sf
  silent = tmp_path / "silent.wav"
  sf.write(silent, np.zeros(SR, np.float32), SR)
  cases = [(["--input", str(silent)], "silent"),
           (["--input", str(tmp_path / "missing.wav")], "no such file"),
           (["--input", str(silent), "--checkpoint", pretrained.SHIPPED_CHECKPOINT], "not a vocoder")]
  for args, phrase in cases:
    with pytest.raises(SystemExit) as exit_info:
      cli.run(vocode.main, args + ["--out", str(tmp_path / "o.wav"), *(["--checkpoint", smoke_vocoder]
                                                                      if "--checkpoint" not in args else [])])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1
  assert not (tmp_path / "o.wav").exists()


def test_eval_vocoder_writes_the_table_and_every_utterance(smoke_vocoder, voices_dir, tmp_path, capsys):
  out = tmp_path / "eval"
  eval_vocoder.main(["--checkpoint", smoke_vocoder, "--corpus-config", "small", "--data-dir", voices_dir,
                     "--per-speaker", "1", "--seconds", "0.5", "--sets", "validation", "heldout",
                     "--out", str(out)])
  table = (out / "eval.md").read_text()
  assert "| validation | flite_slt | female | vocoder |" in table and "WORLD" in table
  assert (out / "heldout_espeak_f5_0_vocoded.wav").exists() and (out / "heldout_espeak_f5_0.png").exists()
