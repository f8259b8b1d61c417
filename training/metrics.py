"""Metrics to TensorBoard event files (tensorboardX, no TensorFlow) and a CSV."""

import csv
import math
import os

from tensorboardX import SummaryWriter


class MetricWriter:
  """Writes scalar metrics to `workdir` (events.out.tfevents.*) and `workdir/metrics.csv`.

  The CSV has one row per write: `step,name,value`; it is appended to on resume.
  """

  def __init__(self, workdir):
    os.makedirs(workdir, exist_ok=True)
    self._summary = SummaryWriter(logdir=workdir)
    path = os.path.join(workdir, "metrics.csv")
    is_new = not os.path.exists(path)
    self._csv_file = open(path, "a", newline="")
    self._csv = csv.writer(self._csv_file)
    if is_new:
      self._csv.writerow(["step", "name", "value"])

  def write(self, step, metrics):
    for name, value in sorted(metrics.items()):
      value = float(value)
      self._summary.add_scalar(name, value, step)
      self._csv.writerow([step, name, repr(value) if math.isfinite(value) else str(value)])
    self._csv_file.flush()

  def close(self):
    self._summary.close()
    self._csv_file.close()
