"""Copy-synthesis quality against the original, as vocoder papers report it.

Pitch by pYIN (`dsp.f0_track`, the project's reference tracker) on both
signals, frame by frame; spectra by librosa's STFT.
"""

import librosa
import numpy as np

import dsp

GROSS_ERROR = 0.2  # an F0 off by more than 20% is a gross pitch error


def pitch_errors(reference, output, sample_rate):
  """Voicing and pitch agreement of `output` with `reference`.

  Args:
    reference, output: [n] float32 audio in [-1, 1] (the shorter sets n).
    sample_rate: Hz.

  Returns:
    {"vuv_error_pct": frames whose voicing differs, % of all frames,
     "gross_pitch_error_pct": frames voiced in both with F0 off by > 20%, %
       of those frames (NaN if none),
     "f0_rmse_cents": RMS F0 difference in cents over frames voiced in both,
     "reference_voiced_pct", "output_voiced_pct": voiced share of each, %,
     "reference_median_f0", "output_median_f0": Hz (NaN if unvoiced)}.
  """
  n = min(len(reference), len(output))
  ref = dsp.f0_track(reference[:n], sample_rate)
  out = dsp.f0_track(output[:n], sample_rate)
  ref_voiced, out_voiced = np.isfinite(ref), np.isfinite(out)
  both = ref_voiced & out_voiced
  cents = 1200.0 * np.log2(out[both] / ref[both])
  gross = np.abs(out[both] / ref[both] - 1.0) > GROSS_ERROR
  return {
      "vuv_error_pct": 100.0 * float(np.mean(ref_voiced != out_voiced)) if len(ref) else float("nan"),
      "gross_pitch_error_pct": 100.0 * float(np.mean(gross)) if both.any() else float("nan"),
      "f0_rmse_cents": float(np.sqrt(np.mean(cents ** 2))) if both.any() else float("nan"),
      "reference_voiced_pct": 100.0 * dsp.track_summary(ref)[1] if len(ref) else 0.0,
      "output_voiced_pct": 100.0 * dsp.track_summary(out)[1] if len(out) else 0.0,
      "reference_median_f0": dsp.track_summary(ref)[0],
      "output_median_f0": dsp.track_summary(out)[0],
  }


def log_spectral_distance(reference, output, sample_rate, floor_db=-80.0):
  """Mean over frames of the RMS difference of log power spectra, in dB.

  25 ms Hann frames, 10 ms hop; each spectrum floored `floor_db` below the
  reference's peak so that silence does not dominate.
  """
  n = min(len(reference), len(output))
  n_fft, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
  spectra = [np.abs(librosa.stft(np.asarray(x[:n], np.float32), n_fft=n_fft, hop_length=hop)) ** 2
             for x in (reference, output)]
  floor = spectra[0].max() * 10 ** (floor_db / 10) + 1e-12
  ref_db, out_db = (10.0 * np.log10(np.maximum(s, floor)) for s in spectra)
  return float(np.mean(np.sqrt(np.mean((ref_db - out_db) ** 2, axis=0))))


def median_spectral_centroid(audio, sample_rate, threshold_db=-40.0):
  """Median spectral centroid in Hz over frames above `threshold_db` dBFS (librosa, 25 ms / 10 ms); NaN if none."""
  n_fft, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
  audio = np.asarray(audio, np.float32)
  centroid = librosa.feature.spectral_centroid(y=audio, sr=sample_rate, n_fft=n_fft, hop_length=hop)[0]
  rms = librosa.feature.rms(y=audio, frame_length=n_fft, hop_length=hop)[0]
  active = rms[:len(centroid)] > 10 ** (threshold_db / 20)
  return float(np.median(centroid[active])) if active.any() else float("nan")
