"""Shared command-line plumbing: bad input becomes one line and exit status 2."""

import argparse
import contextlib
import math
import os
import re
import shutil
import sys
import tempfile

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from common.errors import InputError, is_disk_full, StoppedBySignal
from common.files import current_umask, make_dir


class ArgumentParser(argparse.ArgumentParser):
  """An `argparse.ArgumentParser` whose usage errors raise `InputError`.

  With `run`, a missing or malformed flag then prints one `error: ...` line
  and exits 2, like any other bad input; `--help` is unchanged.
  """

  def error(self, message):
    raise InputError(f"{message}; see {self.prog} --help")


def finite_float(text):
  """argparse type: a finite number (rejects nan and inf)."""
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
  if not math.isfinite(value):
    raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
  return value


def positive_float(text):
  """argparse type: a finite number > 0 (lengths, temperatures, step sizes)."""
  value = finite_float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
  return value


def non_negative_float(text):
  """argparse type: a finite number >= 0 (loss weights)."""
  value = finite_float(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
  return value


def seed(text):
  """argparse type: a PRNG seed, an integer in [0, 2**32) (JAX keys take 32 bits of a seed's entropy here)."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if not 0 <= value < 2 ** 32:
    raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32), got {text}")
  return value


def seconds_to_samples(seconds, sample_rate, flag="--seconds"):
  """Rounds a positive length in seconds to samples; at least one.

  Raises:
    InputError: one line naming `flag` when the length rounds to no sample.
  """
  num_samples = int(round(seconds * sample_rate))
  if num_samples < 1:
    raise InputError(f"{flag} {seconds:g} is less than one sample at {sample_rate} Hz; ask for more")
  return num_samples


_FILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".png", ".json")  # names of files, not of output folders


def make_output_dir(path, flag="--out"):
  """Creates the directory `path` (and parents).

  Raises:
    InputError: one line naming `flag` when `path` ends like a file name
      (e.g. out.wav: the command writes a folder of files), or when it cannot
      be created or written.
  """
  if not os.path.isdir(path) and os.path.splitext(path)[1].lower() in _FILE_EXTENSIONS:
    raise InputError(f"{flag} {path}: this command writes a folder of files; give a folder path, not a file name")
  make_dir(path, flag)
  _check_writable(path, path, flag)


@contextlib.contextmanager
def output_dir(path, flag="--out"):
  """Yields a staging folder for a command's outputs, which appear in the folder `path` together or not at all.

  The staging folder sits beside `path` (one file system, so moving is a
  rename). On success a new `path` is the staging folder renamed; an
  existing one has each output replace its namesake. On any error (a full
  disk, an interrupt) the staging folder is removed and `path` is as it was.

  Raises:
    InputError: as `make_output_dir`, before anything is written.
  """
  path = os.path.abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise InputError(f"{flag} {path}: is a file; give a folder path")
  if not os.path.isdir(path) and os.path.splitext(path)[1].lower() in _FILE_EXTENSIONS:
    raise InputError(f"{flag} {path}: this command writes a folder of files; give a folder path, not a file name")
  parent = os.path.dirname(path)
  make_dir(parent, flag)
  _check_writable(parent, path, flag)
  if os.path.isdir(path):
    _check_writable(path, path, flag)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=parent)
  try:
    yield staging
    os.chmod(staging, 0o777 & ~current_umask())
    if not os.path.isdir(path):
      os.replace(staging, path)
    else:
      for name in os.listdir(staging):
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
          shutil.rmtree(target)
        os.replace(os.path.join(staging, name), target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def check_output_file(path, extensions, flag="--out"):
  """Checks that `path` names a file with one of `extensions` in an existing, writable directory.

  Args:
    path: the output file path, as given on the command line.
    extensions: the allowed endings, e.g. (".wav",); compared case-insensitively.
    flag: the flag named in the message.

  Raises:
    InputError: one line naming `flag` and what to do.
  """
  if os.path.splitext(path)[1].lower() not in extensions:
    raise InputError(f"{flag} {path}: give a path ending in {' or '.join(extensions)}")
  if os.path.isdir(path):
    raise InputError(f"{flag} {path}: is a directory; give a file path")
  directory = os.path.dirname(os.path.abspath(path))
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise InputError(f"{flag} {path}: {directory} is a file, not a directory; choose another path")
  if not os.path.isdir(directory):
    raise InputError(f"{flag} {path}: directory {directory} does not exist; create it first")
  _check_writable(directory, path, flag)


def _check_writable(directory, path, flag):
  """Raises `InputError` naming `flag` and `path` unless a file can be created in `directory`."""
  try:
    with tempfile.TemporaryFile(dir=directory):
      pass
  except OSError as error:
    raise InputError(f"{flag} {path}: cannot write to {directory} ({error.strerror}); "
                     "choose another directory") from None


def one_line_flag_error(message):
  """An absl flag error as one line.

  ml_collections' config_flags wraps an exception of a config file's
  `get_config` (e.g. an unknown variant) in a message that holds its whole
  traceback; only the flag and the exception's last line are kept.
  """
  lines = [line.strip() for line in str(message).splitlines() if line.strip()]
  if any(line.startswith("Traceback (most recent call last)") for line in lines):
    flag = lines[0].split(": Error whilst parsing config file")[0]
    cause = lines[-1].split(": ", 1)[-1] if ":" in lines[-1] else lines[-1]
    return f"{flag}: {cause}"
  return " ".join(lines)


def unknown_config_field(argv, error):
  """One line for a `--config.a.b=v` override whose field does not exist, with ml_collections' nearest name."""
  text = str(error).replace("\\'", "'")
  named = re.search(r"'(\w+)'", text)
  suggestion = re.search(r'Did you mean "(\w+)"', text)
  key = named.group(1) if named else None
  flag = next((arg.split("=")[0] for arg in argv[1:] if arg.startswith("--") and key
               and key in arg.split("=")[0].split(".")[1:]), "a --config override")
  return f"{flag}: no config field {key!r}" + (f" (did you mean {suggestion.group(1)!r}?)" if suggestion else "")


def run(main, argv=None):
  """Calls `main(argv)`; an `InputError` or a full disk prints `error: ...` to stderr and exits 2; a run stopped
  by a signal exits 128 + its number."""
  try:
    main(sys.argv[1:] if argv is None else argv)
  except InputError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except StoppedBySignal as stopped:  # the loop has saved a checkpoint and said so
    sys.exit(128 + stopped.signum)
  except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)
  except Exception as error:
    if not is_disk_full(error):
      raise
    where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
    print(f"error: no space left on device{where}; free some space or choose another folder, then rerun",
          file=sys.stderr)
    sys.exit(2)


def run_absl(main):
  """`absl.app.run(main)` where bad flags and `InputError` print one line and exit 2.

  Bad flags include an unknown config variant (`--config FILE.py:NAME`): every
  config file's `get_config` raises on a variant it does not know.
  """
  def parse(argv):
    try:
      remaining = flags.FLAGS(argv)
    except flags.Error as error:
      print(f"error: {one_line_flag_error(error)}; see --help", file=sys.stderr)
      sys.exit(2)
    except (AttributeError, KeyError) as error:  # ml_collections: a --config.FIELD override names no field
      print(f"error: {unknown_config_field(argv, error)}; see --help", file=sys.stderr)
      sys.exit(2)
    except SystemExit as done:
      asked_for_help = any(arg.split("=")[0] in ("-h", "--help", "--helpshort", "--helpfull") for arg in argv[1:])
      sys.exit(0 if asked_for_help else done.code)
    for name in flags.FLAGS:
      try:
        config_flags.get_config_filename(flags.FLAGS[name])
      except TypeError:
        continue  # not a config file flag
      try:
        flags.FLAGS[name].value.keys()  # a config file that failed to load raises on any access
      except OSError as error:
        print(f"error: --{name}: cannot load the config file ({str(error).splitlines()[-1].strip()}); see --help",
              file=sys.stderr)
        sys.exit(2)
    return remaining

  def quiet_main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
    run(main, argv)
  app.run(quiet_main, flags_parser=parse)


def maybe_initialize_distributed():
  """Joins a multi-process run when launched as one (see `training.loop` and the README).

  JAX_COORDINATOR_ADDRESS (host:port of process 0) with JAX_NUM_PROCESSES and
  JAX_PROCESS_ID names the run explicitly (CPU processes then reduce over
  gloo); JAX_COORDINATOR_ADDRESS alone leaves the rest to JAX's detection of
  its cluster (SLURM, a TPU pod slice).
  """
  address = os.environ.get("JAX_COORDINATOR_ADDRESS")
  if not address:
    return
  if "JAX_NUM_PROCESSES" in os.environ:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"]))
  else:
    jax.distributed.initialize()


def run_training(train_and_evaluate, default_config):
  """The body of every `experiments.train_*` command: --workdir, --config (with :variant and overrides).

  Defines the two flags, joins a multi-process run if launched as one, and
  calls `train_and_evaluate(config, workdir)` under `run_absl`. Rerunning the
  same command resumes from the last checkpoint in --workdir.
  """
  workdir = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics.csv, TensorBoard events)",
                                required=True)
  config = config_flags.DEFINE_config_file("config", default_config,
                                           "config file, optionally with :variant (e.g. :smoke)")

  def main(argv):
    del argv
    maybe_initialize_distributed()
    train_and_evaluate(config.value, workdir.value)
  run_absl(main)
