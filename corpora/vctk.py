"""`vctk`: a local copy of CSTR VCTK 0.92, read through TFDS's manual_dir.

The manual dir is the unpacked corpus:
  speaker-info.txt                         ID AGE GENDER ACCENTS REGION ...
  wav48_silence_trimmed/<speaker>/<utterance>_mic1.flac
  txt/<speaker>/<utterance>.txt            (optional; text is '' without it)
Only mic1 recordings are used, resampled from 48 kHz to 16 kHz int16. Splits
are written shard by shard in file order (`corpora.sharded`), so a full copy
builds without TensorFlow.

Each speaker's utterances, in file-name order, are split 90/5/5 into train,
validation and test by `schema.split_of`. When a gender has at least two
speakers, its highest speaker ID goes to `heldout_speakers` instead.

Records: audio [n] int16 at 16 kHz (stored as raw bytes), speaker
(ClassLabel: training speakers, then held-out ones), gender (ClassLabel
female/male), accent, text and id (Text, e.g. 'p225_001').
"""

import os

import tensorflow_datasets as tfds

import dsp
from common.errors import InputError
from corpora import schema, sharded

_AUDIO_DIR = "wav48_silence_trimmed"
_SPEAKER_INFO = "speaker-info.txt"
_MIC_SUFFIX = "_mic1.flac"


def read_speaker_info(path):
  """Parses speaker-info.txt into {speaker_id: (gender, accent)}.

  Args:
    path: the file; whitespace-separated columns ID AGE GENDER ACCENTS
      REGION..., a header line starting with ID. Bare numeric IDs ('225', as
      in VCTK 0.80) get the 'p' prefix of the audio folders.

  Raises:
    InputError: a missing file or a line with fewer than four columns.
  """
  if not os.path.isfile(path):
    raise InputError(f"{path}: no such file; give --manual-dir the VCTK folder that holds {_SPEAKER_INFO}")
  speakers = {}
  with open(path, encoding="utf-8") as handle:
    for number, line in enumerate(handle, start=1):
      fields = line.split()
      if not fields or fields[0].upper() == "ID":
        continue
      if len(fields) < 4:
        raise InputError(f"{path} line {number}: expected ID AGE GENDER ACCENTS, got {line.strip()!r}")
      speaker = "p" + fields[0] if fields[0].isdigit() else fields[0]
      speakers[speaker] = (schema.gender_name(fields[2], f"{path} line {number}"), fields[3])
  return speakers


def _heldout(genders):
  """The highest speaker ID of each gender that has at least two speakers."""
  heldout = []
  for gender in schema.GENDERS:
    members = sorted(speaker for speaker, value in genders.items() if value == gender)
    if len(members) >= 2:
      heldout.append(members[-1])
  return heldout


class Vctk(sharded.Builder, skip_registration=True):
  """VCTK from a local copy; see the module docstring."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Audio as a list of integers; splits shuffled by TFDS, which needs TensorFlow past 1 GiB.",
      "1.1.0": "Audio stored as raw int16 bytes (a third of the size); records in file order, written shard by "
               "shard, so splits of any size build without TensorFlow.",
  }
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default", description="mic1, 16 kHz")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Unpack VCTK-Corpus-0.92 (https://datashare.ed.ac.uk/handle/10283/3443) and pass its folder, "
      f"which holds {_SPEAKER_INFO} and {_AUDIO_DIR}/, as the manual dir.")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": schema.audio_feature(encoding="bytes"),
            "speaker": tfds.features.ClassLabel(),
            "gender": schema.gender_feature(),
            "accent": tfds.features.Text(),
            "text": tfds.features.Text(),
            "id": tfds.features.Text(),
        }),
        homepage="https://datashare.ed.ac.uk/handle/10283/3443",
    )

  def _split_sources(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    audio_root = os.path.join(root, _AUDIO_DIR)
    if not os.path.isdir(audio_root):
      raise InputError(f"{root}: has no {_AUDIO_DIR}/ folder; point --manual-dir at the unpacked VCTK-Corpus-0.92")
    info = read_speaker_info(os.path.join(root, _SPEAKER_INFO))
    recorded = sorted(name for name in os.listdir(audio_root) if os.path.isdir(os.path.join(audio_root, name)))
    unknown = [speaker for speaker in recorded if speaker not in info]
    if unknown:
      raise InputError(f"{audio_root}/{unknown[0]}: speaker missing from {_SPEAKER_INFO}; add a line for it")
    heldout = _heldout({speaker: info[speaker][0] for speaker in recorded})
    self.info.features["speaker"].names = [s for s in recorded if s not in heldout] + heldout
    splits = {}
    for speaker in recorded:
      files = sorted(name for name in os.listdir(os.path.join(audio_root, speaker)) if name.endswith(_MIC_SUFFIX))
      for index, name in enumerate(files):
        split = schema.HELDOUT_SPLIT if speaker in heldout else schema.split_of(index)
        path = os.path.join(audio_root, speaker, name)
        utterance = name.removesuffix(_MIC_SUFFIX)
        item = (path, os.path.join(root, "txt", speaker, utterance + ".txt"), utterance, speaker, *info[speaker])
        splits.setdefault(split, []).append((item, sharded.pcm_bytes(path)))
    if not splits:
      raise InputError(f"{audio_root}: holds no *{_MIC_SUFFIX} files; check the VCTK copy")
    return splits

  def _example(self, item):
    path, text_path, utterance, speaker, gender, accent = item
    text = ""
    if os.path.isfile(text_path):
      with open(text_path, encoding="utf-8") as handle:
        text = handle.read().strip()
    return utterance, {
        "audio": dsp.to_int16(dsp.load_audio(path, schema.SAMPLE_RATE)),
        "speaker": speaker,
        "gender": -1 if gender is None else gender,
        "accent": accent,
        "text": text,
        "id": utterance,
    }
