"""Shared command-line plumbing: bad input becomes one line and exit status 2."""

import argparse
import sys

from absl import app, flags, logging

from dsp.errors import InputError


class ArgumentParser(argparse.ArgumentParser):
  """An `argparse.ArgumentParser` whose usage errors raise `InputError`.

  With `run`, a missing or malformed flag then prints one `error: ...` line
  and exits 2, like any other bad input; `--help` is unchanged.
  """

  def error(self, message):
    raise InputError(f"{message}; see {self.prog} --help")


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
  """`absl.app.run(main)` where bad flags and `InputError` print one line and exit 2."""
  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as error:
      print(f"error: {error}; see --help", file=sys.stderr)
      sys.exit(2)
    except SystemExit as done:
      asked_for_help = any(arg.split("=")[0] in ("-h", "--help", "--helpshort", "--helpfull") for arg in argv[1:])
      sys.exit(0 if asked_for_help else done.code)
  def quiet_main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO.
    run(main, argv)
  app.run(quiet_main, flags_parser=parse)
