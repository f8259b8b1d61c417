"""Tests of corpora/: the voices, vctk and folder builders, crops and the build CLI."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle

import corpora
import dsp
from common import cli
from common.errors import InputError
from corpora import batching, packed, schema, sharded
from corpora.voices import builder as voices_builder
from corpora.voices import engines, render, roster
from corpora.voices.sentences import make_sentences
from experiments import build_corpus
from tests.conftest import harmonic_tone, REPO_ROOT

SPLITS = ("train", "validation", "test", "heldout_speakers")


@pytest.fixture(scope="module")
def voices_records(voices_dir):
  """{split: [record, ...]} of voices/small."""
  return {split: list(corpora.load_split("voices", "small", split, voices_dir)) for split in SPLITS}


def test_voices_small_records_have_the_documented_format(voices_records):
  assert {split: len(records) for split, records in voices_records.items()} == {
      "train": 4, "validation": 2, "test": 2, "heldout_speakers": 8}
  for record in sum(voices_records.values(), []):
    audio = record["audio"]
    assert audio.dtype == np.int16 and audio.ndim == 1
    assert 1.5 < len(audio) / corpora.schema.SAMPLE_RATE < 8.0
    assert np.abs(audio).max() == pytest.approx(0.95 * 32767, abs=2)
    assert record["engine"] in (b"flite", b"espeak-ng")
    assert record["text"].decode().endswith((".", "?"))
    assert np.isfinite(record["median_f0"])


def test_voices_small_labels_and_f0_match_the_roster(voices_dir, voices_records):
  names = corpora.speaker_names("voices", "small", voices_dir)
  assert names == ["flite_slt", "flite_rms", "espeak_f5", "espeak_m7"]
  speakers = {speaker.name: speaker for speaker in roster.SMALL_SPEAKERS + roster.SMALL_HELDOUT}
  f0 = {}
  for record in sum(voices_records.values(), []):
    speaker = speakers[names[record["speaker"]]]
    assert corpora.gender_names()[record["gender"]] == speaker.gender
    assert record["engine"].decode() == speaker.engine
    f0.setdefault(speaker, []).append(float(record["median_f0"]))
  for speaker, values in f0.items():
    low, high = roster.F0_RANGE_HZ[speaker.gender]
    assert low <= np.median(values) <= high, speaker.name


def test_voices_heldout_speakers_are_only_in_their_split(voices_records):
  heldout = {record["speaker"] for record in voices_records["heldout_speakers"]}
  assert len(heldout) == 2
  for split in ("train", "validation", "test"):
    assert heldout.isdisjoint(record["speaker"] for record in voices_records[split])


def test_voices_texts_are_parallel_and_split_disjoint(voices_records):
  texts = {split: {record["text"] for record in records} for split, records in voices_records.items()}
  assert len(texts["train"]) == 2 and len(texts["validation"]) == len(texts["test"]) == 1
  assert texts["train"].isdisjoint(texts["validation"] | texts["test"])
  assert texts["heldout_speakers"] == texts["train"] | texts["validation"] | texts["test"]


def test_sentences_are_seeded_and_distinct():
  sentences = make_sentences(300, seed=1)
  assert sentences == make_sentences(300, seed=1)
  assert len(set(sentences)) == 300
  assert sentences[:20] != make_sentences(20, seed=2)


def test_unknown_espeak_variant_fails_loudly():
  with pytest.raises(InputError, match="espeak-ng has no voice en-us\\+f9"):
    engines.check_installed([roster.Speaker("espeak_f9", "female", "espeak-ng", "en-us+f9")])


def test_missing_engine_names_the_apt_packages(monkeypatch):
  monkeypatch.setattr(engines.shutil, "which", lambda _: None)
  speaker = roster.Speaker("festival_ked", "male", "festival", "ked_diphone")
  with pytest.raises(InputError, match="sudo apt-get install festival festvox-kdlpc16k"):
    engines.check_installed([speaker])


def test_f0_check_rejects_a_voice_of_the_wrong_gender():
  utterances = [render.Utterance(roster.FLITE_SLT, index, "", np.zeros(8, np.int16), 101.0) for index in range(3)]
  with pytest.raises(InputError, match="flite_slt .* median F0 101 Hz, outside the female range"):
    voices_builder.check_f0([roster.FLITE_SLT], utterances)


def test_unknown_names_list_the_known_ones(tmp_path):
  with pytest.raises(InputError, match="known corpora: folder, magnatagatune, music, vctk, voices"):
    corpora.load_split("voicez", "small", "train", str(tmp_path))
  with pytest.raises(InputError, match="known configs: small, full"):
    corpora.load_split("voices", "medium", "train", str(tmp_path))
  with pytest.raises(InputError, match="known configs: any lower-case label"):
    corpora.builder("folder", "My Drums", str(tmp_path))


def test_unbuilt_corpus_names_the_build_command(tmp_path):
  command = f"python -m experiments.build_corpus --name voices --config full --data-dir {tmp_path}"
  with pytest.raises(InputError, match=re.escape(command)):
    corpora.load_split("voices", "full", "train", str(tmp_path))


def test_unknown_split_lists_the_splits(voices_dir):
  with pytest.raises(InputError, match="its splits: .*heldout_speakers"):
    corpora.load_split("voices", "small", "dev", voices_dir)


def test_data_dir_follows_argument_then_environment(monkeypatch, tmp_path):
  monkeypatch.delenv(corpora.DATA_DIR_ENV, raising=False)
  assert corpora.resolve_data_dir() == corpora.DEFAULT_DATA_DIR == os.path.join(REPO_ROOT, "data", "tfds")
  monkeypatch.setenv(corpora.DATA_DIR_ENV, str(tmp_path / "env"))
  assert corpora.resolve_data_dir() == str(tmp_path / "env")
  assert corpora.resolve_data_dir(str(tmp_path / "arg")) == str(tmp_path / "arg")


def _write_fake_vctk(root):
  """Four speakers x three 0.3 s mic1 FLACs at 48 kHz; text for all but one."""
  speakers = {"p225": ("F", "English", "Southern England"), "p226": ("M", "English", "Surrey"),
              "p227": ("M", "Scottish", "Edinburgh"), "p228": ("F", "Irish", "Dublin")}
  lines = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS "]
  for number, (speaker, (gender, accent, region)) in enumerate(speakers.items()):
    lines.append(f"{speaker}  23  {gender}    {accent}  {region}")
    os.makedirs(root / "wav48_silence_trimmed" / speaker)
    os.makedirs(root / "txt" / speaker)
    for utterance in range(1, 4):
      name = f"{speaker}_{utterance:03d}"
      sf.write(root / "wav48_silence_trimmed" / speaker / f"{name}_mic1.flac", harmonic_tone(200 + 50 * number, 0.3, 48000), 48000)
      sf.write(root / "wav48_silence_trimmed" / speaker / f"{name}_mic2.flac", harmonic_tone(100, 0.1, 48000), 48000)
      if name != "p228_003":
        (root / "txt" / speaker / f"{name}.txt").write_text(f"Sentence {utterance} by {speaker}.\n")
  (root / "speaker-info.txt").write_text("\n".join(lines) + "\n")


def _past_the_shuffle_buffer(monkeypatch, shard_bytes):
  """Shrinks TFDS's in-memory shuffle buffer to 16 bytes (past it TFDS needs TensorFlow) and our shards."""
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 16)
  monkeypatch.setattr(sharded, "SHARD_BYTES", shard_bytes)


def _source_audio(path):
  """What a record of the file at `path` must hold: [n] int16 at 16 kHz."""
  return dsp.to_int16(dsp.load_audio(path, schema.SAMPLE_RATE))


def test_vctk_reads_a_local_copy(tmp_path, monkeypatch):
  _write_fake_vctk(tmp_path / "VCTK")
  data_dir = str(tmp_path / "tfds")
  _past_the_shuffle_buffer(monkeypatch, shard_bytes=2 * 4800 * 2)
  corpora.build("vctk", "default", data_dir, manual_dir=str(tmp_path / "VCTK"))
  names = corpora.speaker_names("vctk", "default", data_dir)
  assert names == ["p225", "p226", "p228", "p227"]
  train = {record["id"].decode(): record for record in corpora.load_split("vctk", "default", "train", data_dir)}
  heldout = {record["id"].decode(): record for record in corpora.load_split("vctk", "default", "heldout_speakers", data_dir)}
  assert sorted(train) == [f"{speaker}_{n:03d}" for speaker in ("p225", "p226") for n in (1, 2, 3)]
  assert sorted(heldout) == [f"{speaker}_{n:03d}" for speaker in ("p227", "p228") for n in (1, 2, 3)]
  record = train["p225_002"]
  assert record["audio"].dtype == np.int16 and record["audio"].shape == (4800,)
  assert (names[record["speaker"]], record["gender"], record["accent"], record["text"]) == (
      "p225", 0, b"English", b"Sentence 2 by p225.")
  assert heldout["p227_001"]["gender"] == 1 and heldout["p228_003"]["text"] == b""
  for utterance, record in {**train, **heldout}.items():
    source = tmp_path / "VCTK" / "wav48_silence_trimmed" / utterance[:4] / f"{utterance}_mic1.flac"
    np.testing.assert_array_equal(record["audio"], _source_audio(source))
  splits = corpora.prepared_builder("vctk", "default", data_dir).info.splits
  assert [splits[split].shard_lengths for split in ("train", "heldout_speakers")] == [[2, 2, 2], [2, 2, 2]]


def test_vctk_needs_its_manual_dir(tmp_path):
  with pytest.raises(InputError, match="pass it with --manual-dir"):
    corpora.build("vctk", "default", str(tmp_path / "tfds"))
  (tmp_path / "empty" / "stray").mkdir(parents=True)
  with pytest.raises(InputError, match="has no wav48_silence_trimmed/ folder"):
    corpora.build("vctk", "default", str(tmp_path / "tfds"), manual_dir=str(tmp_path / "empty"))
  (tmp_path / "nothing").mkdir()
  with pytest.raises(InputError, match="nothing: the directory is empty"):
    corpora.build("vctk", "default", str(tmp_path / "unwritten"), manual_dir=str(tmp_path / "nothing"))
  assert not (tmp_path / "unwritten").exists()


def test_a_data_dir_that_cannot_be_created_is_one_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(InputError, match="--data-dir .*file/tfds: cannot create it"):
    corpora.build("voices", "small", str(tmp_path / "file" / "tfds"))


def _write_audio_folder(root):
  (root / "takes").mkdir(parents=True)
  sf.write(root / "kick.wav", harmonic_tone(60, 0.25, 22050, channels=2), 22050)
  sf.write(root / "takes" / "snare.flac", harmonic_tone(200, 0.5, 16000), 16000)
  sf.write(root / "takes" / "hat.ogg", harmonic_tone(3000, 0.2, 44100), 44100)
  sf.write(root / ".scratch.wav", harmonic_tone(100, 0.1, 16000), 16000)
  (root / "notes.txt").write_text("not audio")


def test_folder_reads_audio_and_metadata(tmp_path, monkeypatch):
  _write_audio_folder(tmp_path / "drums")
  (tmp_path / "drums" / "metadata.csv").write_text(
      "file,speaker,gender,tags\nkick.wav,alice,female,drums;acoustic\ntakes/snare.flac,bob,M,\n")
  data_dir = str(tmp_path / "tfds")
  _past_the_shuffle_buffer(monkeypatch, shard_bytes=8000 * 2)
  corpora.build("folder", "drums", data_dir, manual_dir=str(tmp_path / "drums"))
  assert corpora.speaker_names("folder", "drums", data_dir) == ["alice", "bob", "unknown"]
  records = {record["file"].decode(): record for record in corpora.load_split("folder", "drums", "train", data_dir)}
  assert sorted(records) == ["kick.wav", "takes/hat.ogg", "takes/snare.flac"]
  summary = {file: (len(r["audio"]), int(r["speaker"]), int(r["gender"]), r["tags"]) for file, r in records.items()}
  assert summary == {"kick.wav": (4000, 0, 0, b"drums;acoustic"), "takes/snare.flac": (8000, 1, 1, b""),
                     "takes/hat.ogg": (3200, 2, -1, b"")}
  assert all(record["audio"].dtype == np.int16 for record in records.values())
  for file, record in records.items():
    np.testing.assert_array_equal(record["audio"], _source_audio(tmp_path / "drums" / file))
  # Path order kick.wav (4000), takes/hat.ogg (3200), takes/snare.flac (8000) in shards of 8000 samples.
  assert corpora.prepared_builder("folder", "drums", data_dir).info.splits["train"].shard_lengths == [2, 1]


def test_folder_refuses_a_file_longer_than_one_record_before_writing(tmp_path, monkeypatch):
  _write_audio_folder(tmp_path / "drums")
  monkeypatch.setattr(sharded, "MAX_RECORD_BYTES", 7999 * 2)
  with pytest.raises(InputError, match=r"snare\.flac: 0\.0 h of audio, more than one record holds .*cut it"):
    corpora.build("folder", "drums", str(tmp_path / "tfds"), manual_dir=str(tmp_path / "drums"))
  assert [files for _, _, files in os.walk(tmp_path / "tfds") if files] == []


def test_folder_names_an_unreadable_file(tmp_path):
  _write_audio_folder(tmp_path / "drums")
  (tmp_path / "drums" / "broken.wav").write_bytes(b"RIFF and nothing else")
  with pytest.raises(InputError, match=r"broken\.wav: not a readable audio file"):
    corpora.build("folder", "drums", str(tmp_path / "tfds"), manual_dir=str(tmp_path / "drums"))


def test_shard_ranges_fill_shards_in_order_and_give_big_items_their_own():
  assert sharded.shard_ranges([5, 5, 5, 20, 1, 1], shard_bytes=10) == [(0, 2), (2, 3), (3, 4), (4, 6)]
  assert sharded.shard_ranges([], shard_bytes=10) == []


class _Shuffled(schema.Builder, skip_registration=True):
  """Three 1,000-sample records through TFDS's shuffler, like voices and music."""

  VERSION = schema.VERSION
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default")]

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"audio": schema.audio_feature()}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for index in range(3):
      yield index, {"audio": np.full(1000, index, np.int16)}


def test_a_shuffled_split_past_the_buffer_is_one_input_error(tmp_path, monkeypatch):
  monkeypatch.setitem(corpora.BUILDERS, "shuffled", _Shuffled)
  _past_the_shuffle_buffer(monkeypatch, shard_bytes=sharded.SHARD_BYTES)
  with pytest.raises(InputError, match=r"^corpus shuffled/default: a split passed TFDS's 1 GiB in-memory shuffle "
                                       r"buffer, past which TFDS needs TensorFlow \(not installed here\); build a "
                                       r"smaller config$"):
    corpora.build("shuffled", "default", str(tmp_path / "tfds"))


@pytest.mark.parametrize("metadata, message", [
    ("file,speaker\nmissing.wav,alice\n", "'missing.wav' is not an audio file"),
    ("file,gender\nkick.wav,x\n", "line 2: gender 'x' is not female/male"),
    ("path,speaker\nkick.wav,alice\n", "header must name columns from file, speaker, gender, tags"),
])
def test_folder_rejects_bad_metadata(tmp_path, metadata, message):
  _write_audio_folder(tmp_path / "drums")
  (tmp_path / "drums" / "metadata.csv").write_text(metadata)
  with pytest.raises(InputError, match=message):
    corpora.build("folder", "drums", str(tmp_path / "tfds"), manual_dir=str(tmp_path / "drums"))


def _clips(lengths):
  """Clips of the given lengths; clip i holds the value 1000 * (i + 1)."""
  records = [{"audio": np.full(length, 1000 * (i + 1), np.int16), "speaker": i, "gender": i % 2}
             for i, length in enumerate(lengths)]
  return batching.preload(records)


def test_preload_packs_clips_back_to_back_and_skips_empty_ones():
  records = [{"audio": np.array([1, 2, 3], np.int16), "speaker": 4, "gender": 1},
             {"audio": np.zeros(0, np.int16), "speaker": 5, "gender": 0},
             {"audio": np.array([-7], np.int16), "speaker": 6, "gender": -1}]
  clips = batching.preload(records)
  np.testing.assert_array_equal(clips.samples, [1, 2, 3, -7])
  np.testing.assert_array_equal(clips.starts, [0, 3])
  np.testing.assert_array_equal(clips.lengths, [3, 1])
  assert clips.speaker.tolist() == [4, 6] and clips.gender.tolist() == [1, -1] and len(clips) == 2
  assert (clips.speaker.dtype, clips.gender.dtype) == (np.int32, np.int32)
  np.testing.assert_array_equal(clips.clip(1), dsp.from_int16(np.array([-7], np.int16)))
  with pytest.raises(InputError, match="holds no audio"):
    batching.preload(records[1:2])


def test_padded_rows_pad_the_last_batch_with_its_first_row():
  batches = list(packed.padded_rows(5, 2))
  np.testing.assert_array_equal(np.stack([rows for rows, _ in batches]), [[0, 1], [2, 3], [4, 4]])
  np.testing.assert_array_equal(np.stack([weight for _, weight in batches]), [[1, 1], [1, 1], [1, 0]])
  assert batches[0][1].dtype == np.float32


def test_train_batches_are_a_pure_function_of_seed_and_step():
  clips = _clips([5000, 3000, 8000, 120])
  batch = batching.train_batch(clips, seed=3, step=7, batch_size=8, context=300, crop=500)
  again = batching.train_batch(clips, seed=3, step=7, batch_size=8, context=300, crop=500)
  for key in ("codes", "audio", "speaker", "gender"):
    np.testing.assert_array_equal(batch[key], again[key])
  assert not np.array_equal(batch["audio"], batching.train_batch(clips, 3, 8, 8, 300, 500)["audio"])
  assert not np.array_equal(batch["audio"], batching.train_batch(clips, 4, 7, 8, 300, 500)["audio"])


def test_train_batch_shapes_dtypes_and_code_range():
  clips = _clips([5000, 3000, 8000])
  batch = batching.train_batch(clips, seed=0, step=0, batch_size=16, context=300, crop=500)
  assert batch["codes"].shape == batch["audio"].shape == (16, 800)
  assert (batch["codes"].dtype, batch["audio"].dtype) == (np.int32, np.float32)
  assert (batch["speaker"].dtype, batch["gender"].dtype, batch["speaker"].shape) == (np.int32, np.int32, (16,))
  assert batch["codes"].min() >= 0 and batch["codes"].max() <= 255
  np.testing.assert_array_equal(batch["codes"], dsp.quantize(batch["audio"]))
  np.testing.assert_array_equal(batch["audio"][:, -500:], np.broadcast_to(
      dsp.from_int16(1000 * (batch["speaker"][:, None] + 1)), (16, 500)))


def test_short_clips_are_left_padded_with_silence():
  clips = _clips([120])
  batch = batching.train_batch(clips, seed=0, step=0, batch_size=2, context=300, crop=500)
  assert np.all(batch["audio"][:, :680] == 0) and np.all(batch["codes"][:, :680] == dsp.quantize(np.float32(0)))
  np.testing.assert_array_equal(batch["audio"][:, 680:], np.full((2, 120), dsp.from_int16(np.int16(1000))))


def test_eval_batches_walk_fixed_crops_once():
  clips = _clips([1200, 450, 2000])
  batches = list(batching.eval_batches(clips, batch_size=4, context=100, crop=500))
  again = list(batching.eval_batches(clips, batch_size=4, context=100, crop=500))
  # Windows: clip 0 ends at 500, 1000; clip 1 at 450; clip 2 at 500 ... 2000.
  assert len(batches) == 2 and np.array_equal(batches[1]["weight"], [1, 1, 1, 0])
  np.testing.assert_array_equal(np.concatenate([b["speaker"] for b in batches])[:7], [0, 0, 1, 2, 2, 2, 2])
  for batch, repeat in zip(batches, again):
    np.testing.assert_array_equal(batch["codes"], repeat["codes"])
    assert batch["codes"].shape == (4, 600)
  assert np.all(batches[0]["audio"][2, :150] == 0) and np.all(batches[0]["audio"][2, 150:] > 0)


def test_eval_batches_max_windows_spreads_over_the_split():
  clips = _clips([1200, 450, 2000])  # windows of speakers 0, 0, 1, 2, 2, 2, 2
  speakers = [np.concatenate([b["speaker"][b["weight"] > 0] for b in batching.eval_batches(
      clips, batch_size=2, context=100, crop=500, max_windows=n)]).tolist() for n in (4, 7, 50)]
  assert speakers == [[0, 1, 2, 2], [0, 0, 1, 2, 2, 2, 2], [0, 0, 1, 2, 2, 2, 2]]


@pytest.mark.slow
def test_build_corpus_cli_bad_input_is_one_line_and_exit_2(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.build_corpus", "--name", "nope", "--config", "small", "--data-dir", str(tmp_path)],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.splitlines() == ["error: unknown corpus 'nope'; known corpora: folder, magnatagatune, music, vctk, voices"]


@pytest.mark.parametrize("args, message", [
    (["--name", "voices"], "the following arguments are required: --config"),
    (["--name", "voices", "--config", "small", "--manual-dir", "/tmp"], "takes no --manual-dir"),
    (["--name", "vctk", "--config", "default"], "pass it with --manual-dir"),
])
def test_build_corpus_main_rejects_bad_flags(args, message, tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.run(build_corpus.main, args + ["--data-dir", str(tmp_path)])
  assert exit_info.value.code == 2
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.slow
def test_build_corpus_main_builds_a_folder_and_prints_its_speakers(tmp_path, capsys):
  _write_audio_folder(tmp_path / "drums")
  build_corpus.main(["--name", "folder", "--config", "drums", "--data-dir", str(tmp_path / "tfds"),
                     "--manual-dir", str(tmp_path / "drums")])
  out = capsys.readouterr().out
  assert "unknown  unknown" in out and "folder/drums: 1 speaker, 3 utterances" in out


def test_build_corpus_main_prints_the_speaker_table(voices_dir, capsys):
  build_corpus.main(["--name", "voices", "--config", "small", "--data-dir", voices_dir])
  out = capsys.readouterr().out
  assert "espeak_m7  male    espeak-ng" in out
  assert "voices/small: 4 speakers, 16 utterances" in out and "already built" in out
