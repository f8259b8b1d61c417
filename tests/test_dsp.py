"""dsp: audio I/O, mu-law, STFT/iSTFT/Griffin-Lim against librosa, F0, plots."""

import os

import jax
import librosa
import numpy as np
import pytest
import soundfile as sf

import dsp
from common.errors import InputError
from tests.conftest import harmonic_tone

RATE = 16000


def tone(frequency, seconds, rate=RATE, harmonics=3):
  return harmonic_tone(frequency, seconds, rate, harmonics)


def test_mu_law_codes_round_trip_exactly():
  codes = np.arange(256, dtype=np.int32)
  np.testing.assert_array_equal(dsp.quantize(dsp.dequantize(codes)), codes)
  jax_codes = dsp.quantize(dsp.dequantize(jax.numpy.asarray(codes)))
  np.testing.assert_array_equal(np.asarray(jax_codes), codes)


def test_mu_law_companding_inverts_and_quantizes_extremes():
  audio = np.linspace(-1, 1, 1001, dtype=np.float32)
  np.testing.assert_allclose(dsp.mu_law_decode(dsp.mu_law_encode(audio)), audio, atol=1e-6)
  assert dsp.quantize(np.float32(-1.0)) == 0 and dsp.quantize(np.float32(1.0)) == 255
  assert dsp.quantize(np.float32(0.0)) in (127, 128)
  error = np.abs(dsp.dequantize(dsp.quantize(audio)) - audio)
  assert error.max() < 0.035 and error[np.abs(audio) < 0.01].max() < 1e-3


@pytest.mark.parametrize("mu", [255, 31])
def test_companded_value_of_a_code_is_its_bin_centre_companded(mu):
  codes = np.arange(mu + 1, dtype=np.int32)
  value = dsp.mulaw.companded_value(codes, mu)
  np.testing.assert_allclose(value, dsp.mu_law_encode(dsp.dequantize(codes, mu), mu), atol=1e-5)
  assert value[0] == -1.0 and value[-1] == 1.0


@pytest.mark.parametrize("extension,subtype", [
    (".wav", "PCM_U8"), (".wav", "PCM_16"), (".wav", "PCM_24"), (".wav", "PCM_32"),
    (".wav", "FLOAT"), (".flac", "PCM_S8"), (".flac", "PCM_16"), (".flac", "PCM_24"),
    (".ogg", "VORBIS")])
def test_load_audio_reads_formats_and_depths(tmp_path, extension, subtype):
  audio = tone(220.0, 0.5)
  path = tmp_path / f"clip{extension}"
  sf.write(path, audio, RATE, subtype=subtype)
  loaded = dsp.load_audio(path, RATE)
  assert loaded.dtype == np.float32 and loaded.shape == audio.shape
  tolerance = 0.1 if subtype == "VORBIS" else (0.02 if subtype.endswith("8") else 1e-3)
  assert np.max(np.abs(loaded - audio)) < tolerance


@pytest.mark.parametrize("file_rate", [8000, 22050, 44100, 48000])
def test_load_audio_resamples_and_mixes_channels(tmp_path, file_rate):
  left, right = tone(300.0, 1.0, file_rate), tone(300.0, 1.0, file_rate)
  path = tmp_path / "stereo.wav"
  sf.write(path, np.stack([left, -0.5 * right], axis=1), file_rate)
  loaded = dsp.load_audio(path, RATE)
  assert abs(len(loaded) - RATE) <= 1
  expected = 0.25 * tone(300.0, 1.0, RATE)
  np.testing.assert_allclose(loaded[400:-400], expected[400:len(loaded) - 400], atol=2e-2)


def test_load_audio_bad_inputs_raise_one_line_errors(tmp_path):
  empty = tmp_path / "empty.wav"
  empty.write_bytes(b"")
  text = tmp_path / "notes.wav"
  text.write_text("this is not audio\n")
  nan = tmp_path / "nan.wav"
  sf.write(nan, np.array([0.0, np.nan, 0.1], np.float32), RATE, subtype="FLOAT")
  inf = tmp_path / "inf.wav"
  sf.write(inf, np.array([0.0, np.inf, 0.1], np.float32), RATE, subtype="FLOAT")
  no_samples = tmp_path / "zero.wav"
  sf.write(no_samples, np.zeros(0, np.float32), RATE)
  whole = tmp_path / "whole.wav"
  sf.write(whole, np.full(16000, 0.1, np.float32), RATE, subtype="PCM_16")
  truncated = tmp_path / "truncated.wav"
  truncated.write_bytes(whole.read_bytes()[:-12000])  # a copy cut short: 10,000 of 16,000 samples
  cases = {empty: "empty", text: "not a readable audio file", nan: "NaN", inf: "NaN",
           no_samples: "no samples", tmp_path: "directory", tmp_path / "missing.wav": "no such file",
           truncated: "truncated, 10000 of the 16000 samples its header declares"}
  for path, phrase in cases.items():
    with pytest.raises(InputError, match=phrase) as error:
      dsp.load_audio(path, RATE)
    assert "\n" not in str(error.value)


def test_declared_frames_of_a_wav_and_none_for_other_files(tmp_path):
  for subtype, channels in (("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, np.zeros((123, channels), np.float32), RATE, subtype=subtype)
    assert dsp.audio.wav_declared_frames(path) == 123
  sf.write(tmp_path / "a.flac", np.zeros(50, np.float32), RATE)
  assert dsp.audio.wav_declared_frames(tmp_path / "a.flac") is None


def test_save_audio_is_atomic_and_round_trips(tmp_path):
  audio = tone(440.0, 0.25)
  path = tmp_path / "out.wav"
  dsp.save_audio(path, audio, RATE)
  np.testing.assert_allclose(dsp.load_audio(path, RATE), audio, atol=1e-4)
  assert sorted(os.listdir(tmp_path)) == ["out.wav"]
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # Not mkstemp's 0600.
  with pytest.raises(InputError, match="NaN"):
    dsp.save_audio(tmp_path / "bad.wav", np.array([np.nan], np.float32), RATE)
  with pytest.raises(InputError, match="does not exist"):
    dsp.save_audio(tmp_path / "missing" / "x.wav", audio, RATE)
  assert sorted(os.listdir(tmp_path)) == ["out.wav"]


def test_trim_and_normalize():
  audio = np.concatenate([np.zeros(8000), tone(200.0, 0.5), np.zeros(8000)]).astype(np.float32)
  trimmed = dsp.trim_silence(audio, top_db=40)
  assert 8000 <= len(trimmed) <= 8000 + 2 * 2048  # frame-granular edges (2048-sample frames)
  assert np.max(np.abs(dsp.peak_normalize(audio, 0.9))) == pytest.approx(0.9)
  silence = np.zeros(100, np.float32)
  np.testing.assert_array_equal(dsp.peak_normalize(silence), silence)


def test_int16_round_trip(tmp_path):
  pcm = np.array([-32768, -32767, -1, 0, 1, 32766, 32767], np.int16)
  np.testing.assert_array_equal(dsp.to_int16(dsp.from_int16(pcm)), pcm)
  path = tmp_path / "pcm.wav"
  sf.write(path, pcm, 16000, subtype="PCM_16")
  np.testing.assert_array_equal(dsp.to_int16(dsp.load_audio(path, 16000)), pcm)
  np.testing.assert_array_equal(dsp.to_int16(np.array([-1.5, 1.5])), [-32768, 32767])


@pytest.mark.parametrize("n_fft,hop,length", [(2048, 512, 11025), (512, 128, 4000), (400, 160, 3001), (64, 16, 999)])
def test_stft_and_istft_match_librosa(n_fft, hop, length):
  audio = np.random.default_rng(0).standard_normal(length).astype(np.float32)
  expected = librosa.stft(audio, n_fft=n_fft, hop_length=hop).T
  got = np.asarray(dsp.stft(audio, n_fft, hop))
  assert got.shape == expected.shape
  assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) < 1e-4
  expected_inverse = librosa.istft(expected.T, n_fft=n_fft, hop_length=hop, length=length)
  got_inverse = np.asarray(dsp.istft(expected, n_fft, hop, length=length))
  assert np.max(np.abs(got_inverse - expected_inverse)) / np.max(np.abs(expected_inverse)) < 1e-4
  np.testing.assert_allclose(got_inverse, audio, atol=1e-4)


@pytest.mark.parametrize("n_fft,hop,n_mels,eps", [(1024, 256, 80, 1e-6), (512, 128, 16, 1e-5)])
def test_log_mel_matches_librosa(n_fft, hop, n_mels, eps):
  audio = 0.3 * np.random.default_rng(2).standard_normal((2, 4000)).astype(np.float32)
  audio[1, 1000:] = 0.0  # Silent frames: the log floor is log(eps).
  expected = np.log(librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                                                   center=True, pad_mode="constant", power=2.0) + eps)
  got = np.asarray(dsp.log_mel(audio, RATE, n_fft, hop, n_mels, eps))
  assert got.shape == (2, 1 + 4000 // hop, n_mels) == np.swapaxes(expected, -1, -2).shape
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, np.swapaxes(expected, -1, -2), rtol=1e-4, atol=1e-4)
  assert np.isclose(got[1, -1].min(), np.log(eps), rtol=1e-4)


def test_stft_is_batched():
  audio = np.random.default_rng(1).standard_normal((2, 3, 1000)).astype(np.float32)
  batched = np.asarray(dsp.stft(audio, 256, 64))
  np.testing.assert_allclose(batched[1, 2], np.asarray(dsp.stft(audio[1, 2], 256, 64)), atol=1e-5)


def test_griffin_lim_converges_with_iterations():
  audio = tone(180.0, 0.5, harmonics=6) + 0.05 * np.random.default_rng(2).standard_normal(8000).astype(np.float32)
  magnitude = np.abs(np.asarray(dsp.stft(audio, 512, 128)))
  key = jax.random.key(0)
  errors = [float(dsp.spectral_convergence(dsp.griffin_lim(magnitude, key, 512, 128, len(audio), n), magnitude, 512, 128))
            for n in (1, 10, 50)]
  assert errors[0] > errors[1] > errors[2]
  assert errors[2] < 0.5 * errors[0]
  plain = dsp.griffin_lim(magnitude, key, 512, 128, len(audio), 50, momentum=0.0)
  assert float(dsp.spectral_convergence(plain, magnitude, 512, 128)) > errors[2]


@pytest.mark.parametrize("frequency", [110.0, 210.0])
def test_median_f0_of_a_harmonic_tone(frequency):
  assert dsp.median_f0(tone(frequency, 1.0), RATE) == pytest.approx(frequency, rel=0.02)
  assert np.isnan(dsp.median_f0(np.zeros(RATE, np.float32), RATE))


def test_voiced_fraction_of_a_tone_then_silence():
  audio = np.concatenate([tone(150.0, 1.0), np.zeros(RATE, np.float32)])
  median, voiced = dsp.track_summary(dsp.f0_track(audio, RATE))
  assert voiced == pytest.approx(0.5, abs=0.05) and median == pytest.approx(150.0, rel=0.02)
  empty = dsp.f0_track(np.zeros(100, np.float32), RATE)
  assert empty.size == 0 and np.isnan(dsp.track_summary(empty)[0]) and dsp.track_summary(empty)[1] == 0.0


def test_active_fraction_counts_frames_above_the_threshold():
  frame = int(0.025 * RATE)
  quiet, loud = np.full(3 * frame, 0.005, np.float32), np.full(frame, 0.1, np.float32)  # -46 dB, -20 dB
  assert dsp.active_fraction(np.concatenate([quiet, loud, loud[:frame // 2]]), RATE) == 0.25
  assert dsp.active_fraction(quiet, RATE, threshold_db=-50.0) == 1.0
  assert dsp.active_fraction(loud[:frame - 1], RATE) == 0.0


def test_spectrogram_pngs_are_written(tmp_path):
  dsp.save_spectrogram_png(tmp_path / "one.png", tone(300.0, 0.5), RATE, "tone")
  dsp.save_spectrograms_png(tmp_path / "two.png", [("a", tone(300.0, 0.5)), ("b", tone(600.0, 0.3))], RATE)
  for name in ("one.png", "two.png"):
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert sorted(os.listdir(tmp_path)) == ["one.png", "two.png"]
