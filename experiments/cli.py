"""Shared command-line plumbing: bad input becomes one line and exit status 2."""

import argparse
import importlib.util
import inspect
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from dsp.errors import InputError


class ArgumentParser(argparse.ArgumentParser):
  """An `argparse.ArgumentParser` whose usage errors raise `InputError`.

  With `run`, a missing or malformed flag then prints one `error: ...` line
  and exits 2, like any other bad input; `--help` is unchanged.
  """

  def error(self, message):
    raise InputError(f"{message}; see {self.prog} --help")


def make_output_dir(path, flag="--out"):
  """Creates the directory `path` (and parents).

  Raises:
    InputError: one line naming `flag` when it cannot be created or written.
  """
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as error:
    raise InputError(f"{flag} {path}: cannot create it ({error.strerror}); choose another directory") from None
  if not os.access(path, os.W_OK):
    raise InputError(f"{flag} {path}: not writable; choose another directory")


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


def unknown_config_variant(flag_values):
  """One line about a config-file flag whose `:variant` its file does not know, else None.

  A config file whose `get_config` raises on an unknown variant already fails
  flag parsing; one that falls back to its default for any name is caught
  here: a variant other than `get_config`'s default that builds exactly the
  default config is taken as unknown.
  """
  for name in flag_values:
    try:
      argument = config_flags.get_config_filename(flag_values[name])
    except TypeError:  # Not a config-file flag.
      continue
    if ":" not in (argument or ""):
      continue
    path, variant = argument.split(":", 1)
    spec = importlib.util.spec_from_file_location(f"_variants_of_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parameters = list(inspect.signature(module.get_config).parameters.values())
    default = parameters[0].default if parameters else inspect.Parameter.empty
    if isinstance(default, str) and variant != default and module.get_config(variant) == module.get_config(default):
      return (f"flag --{name}={path}:{variant}: unknown variant {variant!r} (it builds the same config as the "
              f"default {default!r}); see {path} for its variants")
  return None


def run(main, argv=None):
  """Calls `main(argv)`; an `InputError` prints `error: ...` to stderr and exits 2."""
  try:
    main(sys.argv[1:] if argv is None else argv)
  except InputError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)


def run_absl(main):
  """`absl.app.run(main)` where bad flags and `InputError` print one line and exit 2.

  Bad flags include an unknown config variant (`--config FILE.py:NAME`), both
  one that `get_config` rejects and one that it silently treats as its default.
  """
  def parse(argv):
    try:
      remaining = flags.FLAGS(argv)
    except flags.Error as error:
      print(f"error: {one_line_flag_error(error)}; see --help", file=sys.stderr)
      sys.exit(2)
    except SystemExit as done:
      asked_for_help = any(arg.split("=")[0] in ("-h", "--help", "--helpshort", "--helpfull") for arg in argv[1:])
      sys.exit(0 if asked_for_help else done.code)
    unknown = unknown_config_variant(flags.FLAGS)
    if unknown:
      print(f"error: {unknown}", file=sys.stderr)
      sys.exit(2)
    return remaining

  def quiet_main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
    run(main, argv)
  app.run(quiet_main, flags_parser=parse)
