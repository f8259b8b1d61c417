"""Fixtures shared by the test modules."""

import pytest

import corpora


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory):
  """A data dir holding voices/small, built once per test session (about 10 s)."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  corpora.build("voices", "small", data_dir)
  return data_dir


@pytest.fixture(scope="session")
def music_dir(tmp_path_factory):
  """A data dir holding music/small, built once per test session (about 10 s)."""
  data_dir = str(tmp_path_factory.mktemp("tfds_music"))
  corpora.build("music", "small", data_dir)
  return data_dir
