"""The exceptions that commands turn into exit statuses (see `experiments/cli.py`).

Library code raises `InputError` with a message that says what is wrong and
what to do; command-line entry points print it as one line and exit with
status 2. A training run stopped by a signal raises `StoppedBySignal` after
saving its checkpoint; commands exit with 128 + the signal's number (130 for
SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed, so
that a scheduler can tell a stopped run from a finished one.
"""


class InputError(ValueError):
  """Bad input from the user: a file, a flag value, a checkpoint."""


class StoppedBySignal(Exception):
  """A run stopped cleanly by SIGINT or SIGTERM; `signum` is the signal, `state` what was saved."""

  def __init__(self, signum, state=None):
    super().__init__(f"stopped by signal {signum}")
    self.signum = int(signum)
    self.state = state
