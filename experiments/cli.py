"""Shared command-line plumbing: bad input becomes one line and exit status 2."""

import sys

from dsp.errors import InputError


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
