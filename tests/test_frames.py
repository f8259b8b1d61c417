"""Frame features and the excitation (dsp.frames, dsp.excitation) against the libraries they wrap."""

import librosa
import numpy as np
import parselmouth
import pytest

from dsp import excitation, frames

SR = 16000
HOP = 160


def harmonic_tone(f0, seconds, phase=0.0, harmonics=5):
  """A voice-like tone: `harmonics` harmonics of a (possibly varying) F0 with 1/k amplitudes."""
  n = int(seconds * SR)
  f0 = np.broadcast_to(np.asarray(f0, np.float64), (n,))
  phi = phase + 2 * np.pi * np.concatenate([[0.0], np.cumsum(f0)[:-1]]) / SR
  return (0.3 * sum(np.cos(k * phi) / k for k in range(1, harmonics + 1))).astype(np.float32), phi


def test_frame_count_and_centres_follow_the_hop():
  assert frames.hop_length(SR) == HOP
  assert frames.num_frames(1, SR) == 1 and frames.num_frames(HOP, SR) == 1 and frames.num_frames(HOP + 1, SR) == 2
  with pytest.raises(ValueError):
    frames.hop_length(22050)


def test_track_f0_is_praats_track_at_the_frame_centres():
  audio, _ = harmonic_tone(np.linspace(110.0, 180.0, SR), 1.0)
  pitch = parselmouth.Sound(audio.astype(np.float64), SR).to_pitch_ac(
      time_step=HOP / SR, pitch_floor=frames.F0_FLOOR_HZ, pitch_ceiling=frames.F0_CEILING_HZ)
  ours = frames.track_f0(audio, SR)
  assert len(ours) == frames.num_frames(len(audio), SR)
  centres = (np.arange(len(ours)) + 0.5) * HOP / SR
  for frame in range(10, len(ours) - 10, 7):
    np.testing.assert_allclose(ours[frame], pitch.get_value_at_time(centres[frame]), rtol=2e-3)
  expected = 110.0 + 70.0 * centres[20:-20]
  np.testing.assert_allclose(ours[20:-20], expected, rtol=0.01)


def test_unvoiced_noise_and_a_too_short_clip_have_no_pitch():
  noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
  assert np.mean(frames.track_f0(noise, SR) > 0) < 0.1  # almost no frame voiced
  assert not frames.track_f0(noise[:400], SR).any()


def test_bridged_log_f0_interpolates_gaps_and_holds_the_ends():
  f0 = np.array([0, 100, 0, 0, 200, 0], np.float64)
  bridged = np.exp(frames.bridge_log_f0(f0))
  np.testing.assert_allclose(bridged, [100, 100, 100 * 2 ** (1 / 3), 100 * 2 ** (2 / 3), 200, 200], rtol=1e-5)
  np.testing.assert_allclose(frames.bridge_log_f0(np.zeros(3)), frames.UNVOICED_LOG_F0)


def test_features_describe_the_samples_of_their_frame():
  audio = np.zeros(SR, np.float32)
  tone, _ = harmonic_tone(150.0, 0.3)
  audio[40 * HOP:40 * HOP + len(tone)] = tone  # frames 40 .. 69 hold the tone
  features = frames.frame_features(audio, SR)
  assert features.log_mel.shape == (100, frames.NUM_MELS) and features.energy.shape == (100,)
  loud = features.energy > np.log(0.01)
  np.testing.assert_array_equal(np.flatnonzero(loud), np.arange(40, 70))
  voiced = np.flatnonzero(features.voiced)
  assert voiced.min() >= 38 and voiced.max() <= 71 and len(voiced) >= 25
  np.testing.assert_allclose(np.exp(features.log_f0[45:65]), 150.0, rtol=0.01)


def test_log_mel_is_librosas_mel_spectrogram_of_frame_centred_windows():
  audio, _ = harmonic_tone(200.0, 0.5)
  features = frames.frame_features(audio, SR)
  padded = np.pad(audio, (HOP // 2, len(features.energy) * HOP - len(audio) + HOP // 2))
  mel = librosa.feature.melspectrogram(y=padded, sr=SR, n_fft=4 * HOP, hop_length=HOP, n_mels=frames.NUM_MELS,
                                       center=True, pad_mode="constant", power=2.0)
  np.testing.assert_allclose(features.log_mel, np.log(mel.T[:len(features.energy)] + 1e-8), atol=1e-4)


def test_fundamental_phase_recovers_the_phase_of_a_tone():
  f0 = np.linspace(100.0, 160.0, SR)
  audio, phi = harmonic_tone(f0, 1.0, phase=1.3)
  measured = frames.fundamental_phase(audio, f0, SR)
  inner = slice(2000, SR - 2000)
  error = np.angle(np.exp(1j * (measured[inner] - phi[inner])))
  assert np.max(np.abs(error)) < 0.1


def test_pyin_on_the_excitation_of_a_contour_returns_the_contour():
  count = 150
  log_f0 = np.log(np.linspace(110.0, 220.0, count)).astype(np.float32)
  voiced = np.ones(count, np.float32)
  source = excitation.excitation(log_f0, voiced, HOP, SR)
  assert source.shape == (count * HOP, excitation.NUM_CHANNELS)
  f0, is_voiced, _ = librosa.pyin(source[:, 0], fmin=60, fmax=400, sr=SR, frame_length=1024, hop_length=HOP,
                                  center=True)
  truth = np.exp(np.interp(np.arange(len(f0)) * HOP, (np.arange(count) + 0.5) * HOP, log_f0))
  inner = slice(5, count - 5)
  assert is_voiced[inner].all()
  cents = 1200 * np.log2(f0[inner] / truth[inner])
  assert np.median(np.abs(cents)) < 15 and np.max(np.abs(cents)) < 50


def test_excitation_is_phase_continuous_and_silent_or_noise_where_unvoiced():
  log_f0 = np.log(np.full(20, 130.0, np.float32))
  voiced = np.array([1] * 10 + [0] * 10, np.float32)
  noise = np.random.default_rng(0).normal(size=20 * HOP)
  source = excitation.excitation(log_f0, voiced, HOP, SR, noise=noise)
  sine = source[:10 * HOP, 0]
  assert np.max(np.abs(np.diff(sine))) <= 2 * np.pi * 130.0 / SR + 1e-6  # no jump at frame boundaries
  np.testing.assert_array_equal(source[10 * HOP:, :2], 0.0)
  np.testing.assert_array_equal(source[:10 * HOP, 2], 0.0)
  np.testing.assert_allclose(source[10 * HOP:, 2], noise[10 * HOP:], rtol=1e-6)


def test_a_measured_frame_phase_restarts_each_voiced_frame():
  log_f0 = np.log(np.full(6, 100.0, np.float32))
  voiced = np.array([1, 1, 0, 1, 1, 1], np.float32)
  frame_phase = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 4.0], np.float32)
  phase = excitation.source_phase(log_f0, voiced, HOP, SR, frame_phase)
  for frame in np.flatnonzero(voiced):
    assert phase[frame * HOP] == pytest.approx(frame_phase[frame], abs=1e-9)
  np.testing.assert_allclose(np.diff(phase[HOP:2 * HOP]), 2 * np.pi * 100.0 / SR, rtol=1e-6)


def test_bandwidth_tells_a_recording_made_at_8_khz_from_a_full_band_one():
  def voice(rate):  # 2 s of a 100 Hz voice with a speech-like tilt (1/k), every harmonic below rate / 2, at SR.
    t = np.arange(2 * rate) / rate
    tone = sum(np.cos(2 * np.pi * 100 * k * t) / k for k in range(1, int(rate / 2 / 100)))
    return librosa.resample(0.1 * tone.astype(np.float32), orig_sr=rate, target_sr=SR) if rate != SR else 0.1 * tone
  full, at_8k, at_11k = (frames.bandwidth_hz(voice(rate).astype(np.float32), SR) for rate in (SR, 8000, 11025))
  assert full > 0.95 * SR / 2 and 3800 < at_8k < 4000 and 5300 < at_11k < 5512.5
  assert frames.observed_bands(full, SR) == frames.NUM_MELS
  upper_edges = librosa.mel_frequencies(n_mels=frames.NUM_MELS + 2, fmax=SR / 2)[2:]
  for bandwidth in (at_8k, at_11k):
    observed = frames.observed_bands(bandwidth, SR)
    assert 0 < observed < frames.NUM_MELS  # Bands up to the roll-off, not one past it:
    assert upper_edges[observed - 1] <= frames.ROLL_OFF_SHARE * bandwidth < upper_edges[observed]
  assert frames.observed_bands(at_8k, SR) == 17  # The 7 bands centred from 3.35 kHz up reach into the roll-off.
  assert frames.bandwidth_hz(np.zeros(SR, np.float32), SR) == 0.0
