"""Matplotlib, loaded on first use with the Agg backend, and figures saved as PNG atomically.

Nothing is imported at module load, so importing a package that can draw
(`dsp` among them) neither loads matplotlib nor switches its backend.
"""

from common.files import atomic_path


def pyplot():
  """`matplotlib.pyplot`, its backend set to Agg (files only, no display) on the first call."""
  import matplotlib  # pylint: disable=import-outside-toplevel  (deferred on purpose: see the module docstring)
  if matplotlib.get_backend().lower() != "agg":
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def save_figure(figure, path):
  """Saves a matplotlib figure to `path` as PNG atomically (temporary file, then rename) and closes it."""
  try:
    with atomic_path(path, ".png") as temporary:
      figure.savefig(temporary, dpi=100, bbox_inches="tight")
  finally:
    pyplot().close(figure)
