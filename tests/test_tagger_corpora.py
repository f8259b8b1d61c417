"""Tests of the tagged corpora: music (rendered scores), magnatagatune (a fake local tree), tagging crops."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import corpora
from common.errors import InputError
from corpora import magnatagatune, tagging
from corpora.music import builder as music_builder
from corpora.music import render
from corpora.music import tags as music_tags
from tests.conftest import REPO_ROOT

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def music_records(music_dir):
  return {split: list(corpora.load_split("music", "small", split, music_dir)) for split in SPLITS}


def test_music_has_no_speakers_to_name(tmp_path):
  with pytest.raises(InputError, match="corpus music/small has no speakers; pass a speech corpus"):
    corpora.speaker_names("music", "small", str(tmp_path))


def test_music_small_builds_with_the_documented_records(music_dir, music_records):
  names = tagging.tag_names("music", "small", music_dir)
  assert names == list(music_tags.tag_names(("bach", "traditional")))
  assert {split: len(records) for split, records in music_records.items()} == {"train": 4, "validation": 4, "test": 4}
  for record in sum(music_records.values(), []):
    assert record["audio"].dtype == np.int16 and record["audio"].shape == (64000,)
    assert np.abs(record["audio"]).max() == pytest.approx(0.9 * 32767, abs=2)
    tags = dict(zip(names, record["tags"].tolist()))
    assert record["tags"].dtype == np.uint8 and len(record["tags"]) == len(names)
    assert tags["solo"] + tags["ensemble"] == 1
    assert tags["slow"] + tags["fast"] <= 1 and tags["low"] + tags["high"] <= 1
    assert tags["bach"] + tags["traditional"] == 1
    assert tags[record["composer"].decode()] == 1
    assert 1 <= sum(tags[family] for family in music_tags.FAMILY_NAMES) <= 2
    assert record["piece"].decode().startswith({"bach": "bach/", "traditional": "ryansMammoth/"}[
        record["composer"].decode()])


def test_music_small_has_no_piece_in_two_splits(music_records):
  pieces = {split: {record["piece"] for record in records} for split, records in music_records.items()}
  assert pieces["train"].isdisjoint(pieces["validation"])
  assert pieces["train"].isdisjoint(pieces["test"])
  assert pieces["validation"].isdisjoint(pieces["test"])
  assert sum(len(names) for names in pieces.values()) == 6


def test_music_full_selection_is_seeded_stratified_and_split_by_piece():
  first, second = music_builder.select_pieces(music_builder.FULL), music_builder.select_pieces(music_builder.FULL)
  assert first == second
  assert len({piece.name for piece in first}) == len(first) == 1250
  for label, _, _, count in music_builder.FULL.collections:
    splits = [piece.split for piece in first if piece.composer == label]
    assert len(splits) == count
    assert splits.count("test") == count // 10 and splits.count("validation") == (count + 1) // 10


def test_multi_hot_follows_what_is_rendered():
  composers = ("bach", "traditional")
  names = music_tags.tag_names(composers)
  vector = music_tags.multi_hot(composers, ("organ", "pipe"), 3, 4.0, 50.0, "traditional")
  assert [name for name, value in zip(names, vector) if value] == ["organ", "pipe", "ensemble", "fast", "low",
                                                                   "traditional"]
  vector = music_tags.multi_hot(composers, ("piano",), 1, 2.0, 80.0, "bach")
  assert [name for name, value in zip(names, vector) if value] == ["piano", "solo", "high", "bach"]


def test_excerpt_statistics_come_from_the_selected_notes():
  # Two parts of eighth notes (0.5 quarter) a fifth apart, 64 notes each.
  onsets = np.arange(64) * 0.5
  parts = [np.stack([onsets, np.full(64, 0.5), np.full(64, 60.0)], axis=1),
           np.stack([onsets, np.full(64, 0.5), np.full(64, 67.0)], axis=1)]
  for seed in range(20):
    excerpt = render.make_excerpt(parts, np.random.default_rng(seed), clip_seconds=4.0)
    eighths_in_clip = 4.0 * excerpt.tempo_bpm / 60.0 / 0.5
    assert excerpt.onsets_per_s == len(np.unique(np.round(excerpt.notes[:, 0], 3))) / 4.0
    assert 0.75 * eighths_in_clip - 1 <= 4.0 * excerpt.onsets_per_s <= eighths_in_clip + 1
    assert excerpt.n_parts == len(excerpt.programs) in (1, 2)
    assert np.all(excerpt.notes[:, 1] <= 4.0 + 1e-9) and np.all(excerpt.notes[:, 0] < excerpt.notes[:, 1])
    pitches = set(excerpt.notes[:, 2].tolist())
    assert len(pitches) == excerpt.n_parts and excerpt.median_pitch == pytest.approx(np.median(excerpt.notes[:, 2]))
    for family in excerpt.families:
      programs = dict(music_tags.FAMILIES)[family]
      assert any(program in programs for program in excerpt.programs.values())


def test_rendered_note_has_its_pitch(tmp_path):
  excerpt = render.Excerpt(notes=np.array([[0.0, 1.5, 69.0, 0.0]]), programs={0: 73}, families=("pipe",),
                           n_parts=1, onsets_per_s=0.25, median_pitch=69.0, tempo_bpm=120.0)
  midi, wav = str(tmp_path / "a.mid"), str(tmp_path / "a.wav")
  render.write_midi(midi, [excerpt, excerpt], clip_seconds=2.0)
  audio = render.render_midi(midi, wav)
  assert len(audio) >= 2 * 3 * 16000 - 16000
  first = audio[4000:20000]
  spectrum = np.abs(np.fft.rfft(first * np.hanning(len(first))))
  assert abs(np.argmax(spectrum) * 16000 / len(first) - 440.0) < 5.0
  assert np.sqrt(np.mean(np.square(audio[2 * 16000 + 8000:3 * 16000]))) < 1e-3  # the gap is silent
  assert np.sqrt(np.mean(np.square(audio[3 * 16000 + 4000:3 * 16000 + 20000]))) > 1e-2  # the second excerpt sounds


def _fake_magnatagatune(root, with_annotations=True):
  """A tiny tree: 60 tag columns whose frequency falls with the column index, 8 clips in folders 0, c, d, f."""
  rng = np.random.default_rng(0)
  tag_columns = [f"tag{index:02d}" for index in range(60)]
  rows = []
  for clip_id, folder in enumerate(["0", "0", "b", "c", "c", "d", "e", "f"]):
    mp3_path = f"{folder}/artist-album-{clip_id:02d}-song.mp3"
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    sf.write(os.path.join(root, mp3_path), 0.3 * rng.standard_normal(8000).astype(np.float32), 16000, format="MP3")
    values = [int(clip_id <= 7 - index // 8) for index in range(60)]
    rows.append([str(clip_id)] + [str(value) for value in values] + [mp3_path])
  if with_annotations:
    with open(os.path.join(root, magnatagatune.ANNOTATIONS), "w", newline="", encoding="utf-8") as handle:
      writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL)
      writer.writerow(["clip_id"] + tag_columns + ["mp3_path"])
      writer.writerows(rows)
  return rows


def test_magnatagatune_fake_tree_reads_back_50_tags(tmp_path):
  root = str(tmp_path / "mtat")
  rows = _fake_magnatagatune(root)
  data_dir = str(tmp_path / "tfds")
  corpora.build("magnatagatune", "top50", data_dir, manual_dir=root)
  names = tagging.tag_names("magnatagatune", "top50", data_dir)
  assert names == [f"tag{index:02d}" for index in range(50)]
  counts = {}
  for split in SPLITS:
    for record in corpora.load_split("magnatagatune", "top50", split, data_dir):
      piece = record["piece"].decode()
      assert magnatagatune.split_of(piece) == split
      source = next(row for row in rows if row[-1] == piece)
      assert record["tags"].tolist() == [int(value) for value in source[1:51]]
      assert record["audio"].dtype == np.int16 and len(record["audio"]) == pytest.approx(8000, abs=1200)
      counts[split] = counts.get(split, 0) + 1
  assert counts == {"train": 3, "validation": 2, "test": 3}


@pytest.mark.slow
def test_magnatagatune_without_annotations_is_one_line_and_exit_2(tmp_path):
  root = str(tmp_path / "mtat")
  _fake_magnatagatune(root, with_annotations=False)
  with pytest.raises(InputError, match="annotations_final.csv"):
    magnatagatune.read_annotations(root)
  result = subprocess.run([sys.executable, "-m", "experiments.build_corpus", "--name", "magnatagatune", "--config",
                           "top50", "--manual-dir", root, "--data-dir", str(tmp_path / "tfds")],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "annotations_final.csv" in result.stderr


def test_magnatagatune_skips_an_unreadable_mp3_and_names_one_when_none_decodes(tmp_path):
  root = str(tmp_path / "mtat")
  rows = _fake_magnatagatune(root)
  with open(os.path.join(root, rows[0][-1]), "wb") as handle:
    handle.write(b"not an mp3 at all")
  corpora.build("magnatagatune", "top50", str(tmp_path / "tfds"), manual_dir=root)
  split = magnatagatune.split_of(rows[0][-1])
  pieces = [record["piece"] for record in corpora.load_split("magnatagatune", "top50", split, str(tmp_path / "tfds"))]
  assert rows[0][-1].encode() not in pieces and len(pieces) == sum(
      magnatagatune.split_of(row[-1]) == split for row in rows) - 1
  for row in rows:
    with open(os.path.join(root, row[-1]), "wb") as handle:
      handle.write(b"")
  with pytest.raises(InputError, match="no mp3 of this split decodes"):
    corpora.build("magnatagatune", "top50", str(tmp_path / "tfds2"), manual_dir=root)


def test_tagging_batches_are_seeded_and_cover_every_window(music_dir):
  clips = tagging.preload(corpora.load_split("music", "small", "train", music_dir))
  first = tagging.train_batch(clips, 3, 7, 4, 1000)
  again = tagging.train_batch(clips, 3, 7, 4, 1000)
  np.testing.assert_array_equal(first["audio"], again["audio"])
  assert first["audio"].shape == (4, 1000) and first["tags"].shape == (4, clips.tags.shape[1])
  batches = list(tagging.eval_batches(clips, 3, 30000))
  windows = np.concatenate([batch["clip"][batch["weight"] > 0] for batch in batches])
  np.testing.assert_array_equal(windows, np.repeat(np.arange(len(clips)), 2))
  np.testing.assert_allclose(batches[0]["audio"][1], clips.clip(0)[30000:60000])
