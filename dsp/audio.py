"""Audio file I/O and simple waveform utilities (numpy, host side).

Every function takes and returns `audio: [n_samples] float32 in [-1, 1]` at a
given `sample_rate` in Hz unless its docstring says otherwise.
"""

import os
import struct

import librosa
import numpy as np
import soundfile as sf

from common.errors import InputError
from common.files import atomic_path

_FORMATS_HINT = "give a WAV, FLAC or OGG file"


def wav_declared_frames(path):
  """The frame count a RIFF/WAVE file's header declares, or None (not a WAV, or a streamed size of 0 or 2**32-1).

  libsndfile reads a truncated WAV without a word, so `load_audio` compares
  what it read against this.
  """
  with open(path, "rb") as file:
    head = file.read(65536)
  if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
    return None
  position, block_align = 12, None
  while position + 8 <= len(head):
    chunk, size = head[position:position + 4], struct.unpack("<I", head[position + 4:position + 8])[0]
    if chunk == b"fmt " and position + 22 <= len(head):
      block_align = struct.unpack("<H", head[position + 20:position + 22])[0]
    if chunk == b"data":
      return None if not block_align or size in (0, 0xFFFFFFFF) else size // block_align
    position += 8 + size + (size & 1)
  return None


def load_audio(path, sample_rate):
  """Reads any WAV/FLAC/OGG file as mono float32 at `sample_rate`.

  Args:
    path: file path. Any channel count, any rate, int8/16/24/32 or float.
    sample_rate: output rate in Hz; the file is resampled if it differs.

  Returns:
    audio: [n_samples] float32 in [-1, 1], channels averaged.

  Raises:
    InputError: missing path, a directory, an empty or unreadable file, no
      samples, a WAV with fewer samples than its header declares, or
      NaN/inf samples.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise InputError(f"{path}: no such file; check the path")
  if os.path.isdir(path):
    raise InputError(f"{path}: is a directory; {_FORMATS_HINT}")
  if os.path.getsize(path) == 0:
    raise InputError(f"{path}: file is empty; {_FORMATS_HINT}")
  try:
    data, file_rate = sf.read(path, dtype="float32", always_2d=True)
  except (RuntimeError, TypeError) as error:  # sf.LibsndfileError is a RuntimeError
    raise InputError(f"{path}: not a readable audio file ({error}); {_FORMATS_HINT}") from None
  if data.shape[0] == 0:
    raise InputError(f"{path}: holds no samples; {_FORMATS_HINT} with sound in it")
  declared = wav_declared_frames(path)
  if declared is not None and data.shape[0] < declared:
    raise InputError(f"{path}: truncated, {data.shape[0]} of the {declared} samples its header declares; "
                     "copy or export the file again")
  if not np.all(np.isfinite(data)):
    raise InputError(f"{path}: holds NaN or infinite samples; re-export it as PCM")
  audio = data.mean(axis=1)
  audio = resample(audio, file_rate, sample_rate)
  return np.clip(audio, -1.0, 1.0).astype(np.float32)


def save_audio(path, audio, sample_rate):
  """Writes `audio` atomically: a temporary file beside `path`, then a rename.

  Args:
    path: destination; the format follows the extension (.wav as 16-bit PCM).
    audio: [n_samples] float in [-1, 1]; values outside are clipped.
    sample_rate: Hz.

  Raises:
    InputError: the directory does not exist or is not writable, or the
      audio holds NaN/inf.
  """
  path = os.fspath(path)
  audio = np.asarray(audio, dtype=np.float32)
  if audio.ndim != 1:
    raise InputError(f"{path}: expected mono audio [n_samples], got shape {audio.shape}")
  if not np.all(np.isfinite(audio)):
    raise InputError(f"{path}: refusing to write NaN or infinite samples")
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise InputError(f"{path}: directory {directory} does not exist; create it first")
  suffix = os.path.splitext(path)[1] or ".wav"
  subtype = "PCM_16" if suffix.lower() in (".wav", ".flac") else None
  try:
    with atomic_path(path, suffix) as temporary:
      sf.write(temporary, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype)
  except OSError as error:
    raise InputError(f"{path}: cannot write there ({error.strerror}); choose another output path") from None


def resample(audio, source_rate, target_rate):
  """Band-limited resampling (soxr, high quality).

  Args:
    audio: [n_samples] float32 at `source_rate` Hz.
    source_rate, target_rate: Hz.

  Returns:
    [round(n_samples * target_rate / source_rate)] float32.
  """
  audio = np.asarray(audio, dtype=np.float32)
  if source_rate == target_rate:
    return audio
  return librosa.resample(audio, orig_sr=source_rate, target_sr=target_rate).astype(np.float32)


def trim_silence(audio, top_db=40.0):
  """Cuts leading and trailing frames quieter than `top_db` below the peak.

  Args:
    audio: [n_samples] float32.
    top_db: threshold in dB below the loudest 2048-sample frame.

  Returns:
    [n_kept] float32, a contiguous slice of `audio`.
  """
  trimmed, _ = librosa.effects.trim(np.asarray(audio, dtype=np.float32), top_db=top_db)
  return trimmed


def active_fraction(audio, sample_rate, threshold_db=-40.0, frame_seconds=0.025):
  """Share of frames louder than `threshold_db`: tells speech-like audio from silence.

  Args:
    audio: [n_samples] float32 in [-1, 1].
    sample_rate: Hz.
    threshold_db: frame RMS threshold in dB full scale (0 dB: RMS 1).
    frame_seconds: length of the non-overlapping frames; a partial last frame is dropped.

  Returns:
    A float in [0, 1]; 0 when the audio is shorter than one frame.
  """
  frame = max(1, int(round(frame_seconds * sample_rate)))
  audio = np.asarray(audio, dtype=np.float64)
  n_frames = audio.shape[-1] // frame
  if n_frames == 0:
    return 0.0
  rms = np.sqrt(np.mean(audio[:n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
  return float(np.mean(rms > 10 ** (threshold_db / 20)))


def peak_normalize(audio, peak=0.95):
  """Scales so that max |audio| equals `peak`; silence is returned unchanged."""
  audio = np.asarray(audio, dtype=np.float32)
  current = np.max(np.abs(audio)) if audio.size else 0.0
  return audio if current == 0 else (audio * (peak / current)).astype(np.float32)


def to_int16(audio):
  """[n] float in [-1, 1] -> [n] int16 PCM (the corpora's storage format).

  The scale is 32768, as soundfile's when it reads int16 files, so an int16 file
  read by `load_audio` at its own rate and stored again is bit-exact.
  """
  return np.clip(np.round(np.asarray(audio) * 32768.0), -32768, 32767).astype(np.int16)


def from_int16(pcm):
  """[n] int16 PCM -> [n] float32 in [-1, 1)."""
  return np.asarray(pcm, dtype=np.float32) / 32768.0
