"""The exceptions that commands turn into exit statuses (see `common/cli.py`).

Library code raises `InputError` with a message that says what is wrong and
what to do; command-line entry points print it as one line and exit with
status 2. A training run stopped by a signal raises `StoppedBySignal` after
saving its checkpoint; commands exit with 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed, so
that a scheduler can tell a stopped run from a finished one. A full disk is
bad input too (exit 2): the user must free space or choose another folder.
"""

import errno


class InputError(ValueError):
  """Bad input from the user: a file, a flag value, a checkpoint."""


class StoppedBySignal(Exception):
  """A run stopped cleanly by SIGINT or SIGTERM; `signum` is the signal, `state` what was saved."""

  def __init__(self, signum, state=None):
    super().__init__(f"stopped by signal {signum}")
    self.signum = int(signum)
    self.state = state


def is_disk_full(error):
  """Whether an exception reports a full disk: an OSError with ENOSPC, or a wrapped one (tensorstore, via Orbax,
  raises ValueError("... No space left on device ..."))."""
  return getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error)
