"""The one exception type for bad user input.

Library code raises `InputError` with a message that says what is wrong and
what to do; command-line entry points print it as one line and exit with
status 2 (see `experiments/cli.py`).
"""


class InputError(ValueError):
  """Bad input from the user: a file, a flag value, a checkpoint."""
