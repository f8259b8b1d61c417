"""Metrics to TensorBoard event files (tensorboardX, no TensorFlow) and a CSV.

Besides the model's metrics, every run of the loop (a first run or a resume)
appends `run/wall_s` (its wall seconds, compilation and evaluation included)
and `run/steps` when it ends, so `run_totals` gives a run's cost across
resumes.
"""

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


def read_metrics(workdir):
  """The rows of `workdir/metrics.csv` as [(step: int, name: str, value: float)]; [] if there is none."""
  path = os.path.join(workdir, "metrics.csv")
  if not os.path.exists(path):
    return []
  with open(path, newline="") as file:
    return [(int(row["step"]), row["name"], float(row["value"])) for row in csv.DictReader(file)]


def run_totals(workdir):
  """{"runs", "steps", "wall_s"}: the loop's runs in `workdir` and their summed steps and wall seconds."""
  ends = [(name, value) for _, name, value in read_metrics(workdir) if name in ("run/wall_s", "run/steps")]
  return {"runs": sum(name == "run/wall_s" for name, _ in ends),
          "steps": int(sum(value for name, value in ends if name == "run/steps")),
          "wall_s": sum(value for name, value in ends if name == "run/wall_s")}
