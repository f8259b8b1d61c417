"""Metrics to TensorBoard event files (tensorboardX, no TensorFlow) and a CSV, both safe to resume.

A resumed run replays the steps after its checkpoint, so on opening a
workdir at step S the rows and events logged after S by the earlier run are
dropped (the CSV is rewritten without them; TensorBoard is told to purge
them), and nothing is counted twice. A torn last line (a kill mid-write) and
stray headers are dropped too, so a crash cannot make metrics.csv unreadable.
"""

import csv
import math
import os

from tensorboardX import SummaryWriter

from common.files import atomic_path

HEADER = ["step", "name", "value"]


def _parse(row):
  """(step, name, value) of a CSV row, or None for a header, torn or foreign line."""
  if len(row) != 3:
    return None
  try:
    return int(row[0]), row[1], float(row[2])
  except ValueError:
    return None


def _format(step, name, value):
  return [step, name, repr(value) if math.isfinite(value) else str(value)]


class MetricWriter:
  """Writes scalar metrics to `workdir` (events.out.tfevents.*) and `workdir/metrics.csv` (`step,name,value`).

  Args:
    workdir: the run directory.
    resume_step: the step the run continues from (0 for a fresh run); rows
      and events of later steps already on disk are dropped.
    active: False for every process of a multi-process run but process 0: then nothing is written.
  """

  def __init__(self, workdir, resume_step=0, active=True):
    self._active = active
    if not active:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.csv")
    kept = [row for row in read_metrics(workdir) if row[0] <= resume_step]
    with atomic_path(path, ".csv") as temporary:
      with open(temporary, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        writer.writerows(_format(*row) for row in kept)
    # TensorBoard discards the earlier files' events at steps >= purge_step when it reads this file.
    self._summary = SummaryWriter(logdir=workdir, purge_step=resume_step + 1 if resume_step else None)
    self._csv_file = open(path, "a", newline="")
    self._csv = csv.writer(self._csv_file)

  def write(self, step, metrics):
    if not self._active:
      return
    for name, value in sorted(metrics.items()):
      value = float(value)
      self._summary.add_scalar(name, value, step)
      self._csv.writerow(_format(step, name, value))
    self._csv_file.flush()

  def flush(self):
    """Puts every event written so far on disk (called at each checkpoint)."""
    if not self._active:
      return
    self._summary.flush()
    self._csv_file.flush()
    os.fsync(self._csv_file.fileno())

  def close(self):
    if not self._active:
      return
    self._summary.close()
    self._csv_file.close()


def read_metrics(workdir):
  """The rows of `workdir/metrics.csv` as [(step: int, name: str, value: float)]; [] if there is none.

  Lines that are not a row (headers, a line torn by a kill) are skipped.
  """
  path = os.path.join(workdir, "metrics.csv")
  if not os.path.exists(path):
    return []
  with open(path, newline="") as file:
    return [parsed for parsed in map(_parse, csv.reader(file)) if parsed is not None]
