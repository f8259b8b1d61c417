"""Scores to tagged audio: excerpts of music21's bundled scores, rendered with fluidsynth.

A piece's excerpt is drawn from a generator seeded by the piece's name: a
tempo, a transposition, solo (one part) or ensemble, one or two instrument
families and a General MIDI program per family. Every excerpt of a job is
written into one MIDI file, CLIP_SECONDS apart plus a silent gap, and rendered
by a single fluidsynth process (starting one per excerpt would cost more than
the rendering), then cut back into clips.
"""

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib

import numpy as np
import tqdm

import dsp
from common.errors import InputError
from corpora import schema
from corpora.music import tags as tags_lib

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
CLIP_SECONDS = 4.0
_GAP_SECONDS = 1.0
_TICKS_PER_QUARTER = 480
_TICKS_PER_SECOND = 960  # at the MIDI file's fixed 120 quarter notes per minute
_MIN_NOTES = 4
_PIECES_PER_JOB = 8
# Channel 9 is General MIDI percussion; parts use the others.
_CHANNELS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15)


@dataclasses.dataclass(frozen=True)
class Piece:
  """A score of the corpus.

  Attributes:
    name: path relative to music21's corpus folder, e.g. 'bach/bwv1.6.mxl'.
    path: absolute path of the score file.
    composer: the collection's composer label.
    split: the split every excerpt of the piece goes to.
  """

  name: str
  path: str
  composer: str
  split: str


@dataclasses.dataclass(frozen=True)
class Excerpt:
  """A few seconds of a piece, arranged for rendering.

  Attributes:
    notes: [n, 4] float64 rows (start s, end s, MIDI pitch, channel), start < end.
    programs: {channel: General MIDI program (0-based)}.
    families: sorted names of the instrument families that sound.
    n_parts: parts with at least one note.
    onsets_per_s: distinct onset times per second.
    median_pitch: median MIDI pitch of the notes.
    tempo_bpm: quarter notes per minute.
  """

  notes: np.ndarray
  programs: dict
  families: tuple
  n_parts: int
  onsets_per_s: float
  median_pitch: float
  tempo_bpm: float


@dataclasses.dataclass(frozen=True)
class Clip:
  """One rendered excerpt.

  Attributes:
    piece: the `Piece`.
    index: excerpt number within the piece.
    pcm: [CLIP_SECONDS * schema.SAMPLE_RATE] int16, peak 0.9.
    tags: [n_tags] uint8 multi-hot (see `tags.tag_names`).
    programs: the General MIDI programs played, ascending.
    tempo_bpm: quarter notes per minute.
  """

  piece: Piece
  index: int
  pcm: np.ndarray
  tags: np.ndarray
  programs: tuple
  tempo_bpm: float


def check_installed():
  """Raises InputError unless fluidsynth and the General MIDI soundfont are installed."""
  if shutil.which("fluidsynth") is None:
    raise InputError("fluidsynth is not installed; run install.sh (or apt-get install fluidsynth)")
  if not os.path.isfile(SOUNDFONT):
    raise InputError(f"{SOUNDFONT}: soundfont missing; run install.sh (or apt-get install fluid-soundfont-gm)")


def piece_rng(name, purpose):
  """A numpy Generator that depends only on the piece's name and a purpose number."""
  return np.random.default_rng([zlib.crc32(name.encode()), purpose])


def read_parts(path):
  """The notes of a score, one array per part with notes.

  Args:
    path: a score music21 reads (.mxl, .xml, .krn, .abc); an opus gives its first score.

  Returns:
    List of [n, 3] float64 arrays (onset in quarter notes, duration in quarter
    notes, MIDI pitch); chords give a row per pitch, grace notes are dropped.
  """
  from music21 import converter  # noqa: PLC0415 (slow to import; only builds need it)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    score = converter.parse(path)
  if hasattr(score, "scores"):
    score = score.scores[0]
  parts = list(score.parts) or [score]
  result = []
  for part in parts:
    rows = []
    for element in part.flatten().notes:
      duration = float(element.duration.quarterLength)
      if duration <= 0:
        continue
      onset = float(element.offset)
      rows.extend((onset, duration, pitch.midi) for pitch in element.pitches)
    if rows:
      result.append(np.array(rows, dtype=np.float64))
  return result


def make_excerpt(parts, rng, clip_seconds=CLIP_SECONDS):
  """Draws an excerpt of `parts` (from `read_parts`) and its arrangement; None if too sparse."""
  if not parts:
    return None
  tempo_bpm = float(rng.uniform(50.0, 160.0))
  transpose = int(rng.choice([-12, 0, 12]) + rng.integers(-4, 5))
  chosen = list(range(len(parts)))
  if len(parts) > 1 and rng.random() < 0.35:
    chosen = [int(rng.integers(len(parts)))]
  chosen = chosen[:len(_CHANNELS)]
  n_families = 2 if len(chosen) > 1 and rng.random() < 0.5 else 1
  family_ids = rng.choice(len(tags_lib.FAMILIES), size=n_families, replace=False)
  programs_of_family = [int(rng.choice(tags_lib.FAMILIES[family][1])) for family in family_ids]
  part_family = rng.permutation(np.arange(len(chosen)) % n_families)

  length_q = clip_seconds * tempo_bpm / 60.0
  onsets = np.unique(np.concatenate([parts[p][:, 0] for p in chosen]))
  end_q = max(float((parts[p][:, 0] + parts[p][:, 1]).max()) for p in chosen)
  starts = onsets[onsets <= end_q - 0.75 * length_q]
  start_q = float(rng.choice(starts)) if len(starts) else float(onsets[0])

  notes, programs, families = [], {}, set()
  for slot, part_index in enumerate(chosen):
    part = parts[part_index]
    inside = (part[:, 0] >= start_q) & (part[:, 0] < start_q + length_q)
    if not inside.any():
      continue
    family = family_ids[part_family[slot]]
    channel = _CHANNELS[slot]
    programs[channel] = programs_of_family[part_family[slot]]
    families.add(tags_lib.FAMILIES[family][0])
    onset = (part[inside, 0] - start_q) * 60.0 / tempo_bpm
    offset = np.minimum(part[inside, 0] + part[inside, 1] - start_q, length_q) * 60.0 / tempo_bpm
    pitch = np.clip(part[inside, 2] + transpose, 21, 108)
    notes.append(np.stack([onset, offset, pitch, np.full_like(onset, channel)], axis=1))
  if not notes:
    return None
  notes = np.concatenate(notes)
  if len(notes) < _MIN_NOTES:
    return None
  return Excerpt(notes=notes, programs=programs, families=tuple(sorted(families)), n_parts=len(programs),
                 onsets_per_s=len(np.unique(np.round(notes[:, 0], 3))) / clip_seconds,
                 median_pitch=float(np.median(notes[:, 2])), tempo_bpm=tempo_bpm)


def _variable_length(value):
  out = [value & 0x7F]
  value >>= 7
  while value:
    out.append(0x80 | (value & 0x7F))
    value >>= 7
  return bytes(reversed(out))


def write_midi(path, excerpts, clip_seconds=CLIP_SECONDS):
  """Writes `excerpts` into one format-0 MIDI file, excerpt k at k * (clip_seconds + gap) s.

  Each excerpt sets its programs at its start; at clip_seconds + gap / 2 every
  channel gets all-sound-off, so no tail reaches the next excerpt.
  """
  period = clip_seconds + _GAP_SECONDS
  events = []  # (tick, order, bytes): at one tick, controllers, then note-offs, then note-ons
  for k, excerpt in enumerate(excerpts):
    base = k * period
    for channel, program in excerpt.programs.items():
      events.append((round(base * _TICKS_PER_SECOND), 0, bytes([0xC0 | channel, program])))
    for onset, offset, pitch, channel in excerpt.notes:
      channel, pitch = int(channel), int(pitch)
      events.append((round((base + onset) * _TICKS_PER_SECOND), 2, bytes([0x90 | channel, pitch, 90])))
      events.append((round((base + offset) * _TICKS_PER_SECOND), 1, bytes([0x80 | channel, pitch, 0])))
    silence_tick = round((base + clip_seconds + _GAP_SECONDS / 2) * _TICKS_PER_SECOND)
    events.extend((silence_tick, 0, bytes([0xB0 | channel, 120, 0])) for channel in _CHANNELS)
  events.sort(key=lambda event: (event[0], event[1]))
  track = bytearray(b"\x00\xff\x51\x03" + (500000).to_bytes(3, "big"))  # 120 quarter notes per minute
  tick = 0
  for event_tick, _, data in events:
    track += _variable_length(event_tick - tick) + data
    tick = event_tick
  track += b"\x00\xff\x2f\x00"
  with open(path, "wb") as handle:
    handle.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TICKS_PER_QUARTER))
    handle.write(b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def render_midi(midi_path, wav_path):
  """Renders a MIDI file with fluidsynth at schema.SAMPLE_RATE; returns [n] float32 mono."""
  command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-F", wav_path, "-r", str(schema.SAMPLE_RATE),
             SOUNDFONT, midi_path]
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  if result.returncode != 0 or not os.path.isfile(wav_path):
    raise InputError(f"fluidsynth failed on {midi_path} ({result.stderr.strip()[:200]}); check the install")
  return dsp.load_audio(wav_path, schema.SAMPLE_RATE)


def render_pieces(pieces, composers, excerpts_per_piece, clip_seconds=CLIP_SECONDS):
  """Parses, arranges and renders `excerpts_per_piece` excerpts of each piece.

  Pieces music21 cannot parse, and excerpts too sparse or silent, are skipped.

  Returns:
    List of `Clip`, in the order of `pieces` then excerpt index.
  """
  arranged = []
  for piece in pieces:
    try:
      parts = read_parts(piece.path)
    except Exception:  # noqa: BLE001  (music21 raises many types on odd scores; such pieces are skipped)
      continue
    for index in range(excerpts_per_piece):
      excerpt = make_excerpt(parts, piece_rng(piece.name, index), clip_seconds)
      if excerpt is not None:
        arranged.append((piece, index, excerpt))
  if not arranged:
    return []
  length = round(clip_seconds * schema.SAMPLE_RATE)
  period = round((clip_seconds + _GAP_SECONDS) * schema.SAMPLE_RATE)
  with tempfile.TemporaryDirectory(prefix="music-") as directory:
    midi_path, wav_path = os.path.join(directory, "excerpts.mid"), os.path.join(directory, "excerpts.wav")
    write_midi(midi_path, [excerpt for _, _, excerpt in arranged], clip_seconds)
    audio = render_midi(midi_path, wav_path)
  audio = np.pad(audio, (0, max(0, period * len(arranged) - len(audio))))
  clips = []
  for k, (piece, index, excerpt) in enumerate(arranged):
    clip = audio[k * period:k * period + length]
    if np.sqrt(np.mean(np.square(clip))) < 1e-3:
      continue
    tags = tags_lib.multi_hot(composers, excerpt.families, excerpt.n_parts, excerpt.onsets_per_s,
                              excerpt.median_pitch, piece.composer)
    clips.append(Clip(piece=piece, index=index, pcm=dsp.to_int16(dsp.peak_normalize(clip, 0.9)), tags=tags,
                      programs=tuple(sorted(excerpt.programs.values())), tempo_bpm=excerpt.tempo_bpm))
  return clips


def _render_job(job):
  return len(job[0]), render_pieces(*job)


def render_all(pieces, composers, excerpts_per_piece, processes, description):
  """`render_pieces` over worker processes in jobs of a few pieces, with a tqdm bar.

  Returns:
    List of `Clip`, sorted by piece name then excerpt index.
  """
  jobs = [(pieces[start:start + _PIECES_PER_JOB], composers, excerpts_per_piece)
          for start in range(0, len(pieces), _PIECES_PER_JOB)]
  clips = []
  with tqdm.tqdm(total=len(pieces), desc=description, unit="piece") as bar, contextlib.ExitStack() as stack:
    if processes == 1:
      results = map(_render_job, jobs)
    else:
      pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(processes))
      results = pool.imap_unordered(_render_job, jobs)
    for n_pieces, chunk in results:
      clips.extend(chunk)
      bar.update(n_pieces)
  return sorted(clips, key=lambda clip: (clip.piece.name, clip.index))
