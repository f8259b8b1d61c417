"""The shared command-line plumbing: every bad output path is one `InputError` line naming its flag."""

import errno
import os
import tempfile

import pytest

from common import cli
from common.errors import InputError


def refuse_temporary_files(monkeypatch):
  """Makes every directory look unwritable, as a read-only mount does (root ignores permission bits)."""
  def refuse(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
  monkeypatch.setattr(tempfile, "TemporaryFile", refuse)


def test_make_output_dir_creates_parents(tmp_path):
  path = tmp_path / "a" / "b"
  cli.make_output_dir(str(path))
  assert path.is_dir()


def test_make_output_dir_under_a_file_names_the_flag(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(InputError, match=r"^--workdir .*file/out: cannot create it"):
    cli.make_output_dir(str(tmp_path / "file" / "out"), flag="--workdir")


def test_make_output_dir_unwritable(tmp_path, monkeypatch):
  refuse_temporary_files(monkeypatch)
  with pytest.raises(InputError, match=r"^--out .*: cannot write to .*Permission denied"):
    cli.make_output_dir(str(tmp_path))


@pytest.mark.parametrize("name, message", [
    ("clip.mp3", r"give a path ending in \.wav or \.flac"),
    ("missing/clip.wav", r"directory .*missing does not exist"),
    ("file/clip.wav", r"file is a file, not a directory"),
    ("folder.wav", r"folder\.wav: is a directory"),
])
def test_check_output_file_refuses(tmp_path, name, message):
  (tmp_path / "file").write_text("x")
  (tmp_path / "folder.wav").mkdir()
  with pytest.raises(InputError, match=message):
    cli.check_output_file(str(tmp_path / name), (".wav", ".flac"))


def test_check_output_file_accepts_any_case_and_unwritable_is_refused(tmp_path, monkeypatch):
  cli.check_output_file(str(tmp_path / "clip.WAV"), (".wav",))
  refuse_temporary_files(monkeypatch)
  with pytest.raises(InputError, match=r"^--out .*clip\.wav: cannot write to"):
    cli.check_output_file(str(tmp_path / "clip.wav"), (".wav",))


def test_argument_parser_errors_are_input_errors():
  parser = cli.ArgumentParser(prog="tool")
  parser.add_argument("--seconds", type=float, required=True)
  with pytest.raises(InputError, match=r"--seconds.*; see tool --help$"):
    parser.parse_args([])


@pytest.mark.parametrize("kind, text, message", [
    (cli.positive_float, "nan", "must be a finite number"),
    (cli.positive_float, "inf", "must be a finite number"),
    (cli.positive_float, "0", "must be > 0"),
    (cli.positive_float, "two", "'two' is not a number"),
    (cli.non_negative_float, "-1", "must be >= 0"),
    (cli.finite_float, "-inf", "must be a finite number"),
])
def test_float_types_refuse_with_the_flag_named(kind, text, message):
  parser = cli.ArgumentParser(prog="tool")
  parser.add_argument("--value", type=kind)
  with pytest.raises(InputError, match=f"--value: {message}"):
    parser.parse_args([f"--value={text}"])
  assert parser.parse_args(["--value", "0.5"]).value == 0.5


def test_seconds_to_samples_needs_one_sample():
  assert cli.seconds_to_samples(0.5, 16000) == 8000
  with pytest.raises(InputError, match="--seconds 1e-06 is less than one sample at 16000 Hz"):
    cli.seconds_to_samples(1e-6, 16000)


def test_run_prints_one_line_and_exits_2(capsys):
  def main(argv):
    raise InputError(f"bad {argv[0]}")
  with pytest.raises(SystemExit) as done:
    cli.run(main, ["thing"])
  assert done.value.code == 2
  assert capsys.readouterr().err == "error: bad thing\n"


def test_one_line_flag_error_keeps_flag_and_cause():
  message = ("--config: Error whilst parsing config file:\n\nTraceback (most recent call last):\n"
             "  File \"x.py\", line 3\nValueError: unknown variant 'big'; known: default, smoke")
  assert cli.one_line_flag_error(message) == "--config: unknown variant 'big'; known: default, smoke"


def test_a_config_override_of_no_field_names_the_flag_and_the_nearest_field():
  import ml_collections
  config = ml_collections.ConfigDict({"train": {"num_steps": 1, "seed": 0}})
  with pytest.raises(AttributeError) as typo:
    config.train.num_stepz  # what config_flags raises when it applies --config.train.num_stepz
  argv = ["prog", "--workdir=w", "--config.train.num_stepz=5"]
  assert cli.unknown_config_field(argv, typo.value) == (
      "--config.train.num_stepz: no config field 'num_stepz' (did you mean 'num_steps'?)")
  with pytest.raises(AttributeError) as far:
    config.train.zzz
  assert cli.unknown_config_field(["prog", "--config.train.zzz=1"], far.value) == (
      "--config.train.zzz: no config field 'zzz'")


def test_an_output_folder_named_like_a_file_is_refused_and_not_made(tmp_path):
  for name in ("x.wav", "clip.FLAC", "table.json"):
    with pytest.raises(InputError, match="writes a folder of files; give a folder path"):
      cli.make_output_dir(str(tmp_path / name))
    assert not (tmp_path / name).exists()
  cli.make_output_dir(str(tmp_path / "take.2"))  # a dot alone does not make a file name
  assert (tmp_path / "take.2").is_dir()


def test_a_seed_is_an_integer_of_32_bits():
  import argparse
  assert cli.seed("0") == 0 and cli.seed(str(2 ** 32 - 1)) == 2 ** 32 - 1
  for bad in ("-1", str(2 ** 32), "99999999999999999999999", "1.5", "x"):
    with pytest.raises(argparse.ArgumentTypeError):
      cli.seed(bad)
