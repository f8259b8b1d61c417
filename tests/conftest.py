"""Fixtures and helpers shared by the test modules, and the rule that sorts tests into tiers.

Default tier (`pytest`): unit tests of tiny shapes, in minutes. Slow tier
(`pytest -m slow`, also run by CI): every test that builds a corpus (uses
`voices_dir` or `music_dir`), starts a command in a subprocess, or trains
through the shared loop; those that do not build a corpus carry
`@pytest.mark.slow` themselves.
"""

import os

import numpy as np
import pytest

import corpora

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_WAVENET = dict(num_stacks=2, layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=16,
                    head_channels=16, num_classes=32)  # the WaveNet of the unit tests: receptive field 15


def harmonic_tone(frequency, seconds, rate=16000, harmonics=1, peak=0.5, channels=1):
  """A tone of `harmonics` harmonics at 1/k amplitude, scaled to `peak`: [n] (or [n, channels]) float32."""
  t = np.arange(int(seconds * rate)) / rate
  wave = sum(np.sin(2 * np.pi * frequency * k * t) / k for k in range(1, harmonics + 1))
  wave = (peak * wave / np.max(np.abs(wave))).astype(np.float32)
  return np.stack([wave] * channels, axis=1) if channels > 1 else wave
_CORPUS_FIXTURES = {"voices_dir", "music_dir"}


def pytest_configure(config):
  """In the default tier, XLA compiles unoptimised: its tiny programs spend most of their time in the LLVM
  backend, not in running (6:26 -> 4:27 on 2 cores). The slow tier trains and runs commands as users do, at
  XLA's default optimisation (at level 0 the tagger's smoke training meets a non-finite gradient it does not
  meet at the default level). Set before any test starts JAX's backend."""
  if config.option.markexpr.strip() != "slow" and "xla_backend_optimization_level" not in os.environ.get(
      "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()


def pytest_collection_modifyitems(items):
  """Marks slow every test that needs a corpus built (directly or through another fixture)."""
  for item in items:
    if _CORPUS_FIXTURES & set(getattr(item, "fixturenames", ())):
      item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory):
  """A data dir holding voices/small, built once per test session (about 10 s)."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  corpora.build("voices", "small", data_dir)
  return data_dir


@pytest.fixture(scope="session")
def music_dir(tmp_path_factory):
  """A data dir holding music/small, built once per test session (about 10 s)."""
  data_dir = str(tmp_path_factory.mktemp("tfds_music"))
  corpora.build("music", "small", data_dir)
  return data_dir


@pytest.fixture(scope="session")
def smoke_workdir(voices_dir, tmp_path_factory):
  """`(command, config) -> workdir`: `experiments.COMMAND` run on `experiments/configs/CONFIG.py:smoke` over
  voices/small in a subprocess, once per test session for each pair."""
  import subprocess
  import sys
  done_runs = {}

  def run(command, config):
    if (command, config) not in done_runs:
      workdir = str(tmp_path_factory.mktemp(config))
      done = subprocess.run([sys.executable, "-m", f"experiments.{command}", "--config",
                             f"experiments/configs/{config}.py:smoke", "--workdir", workdir,
                             f"--config.data.data_dir={voices_dir}"], cwd=REPO_ROOT, capture_output=True, text=True)
      assert done.returncode == 0, done.stderr[-2000:]
      done_runs[command, config] = workdir
    return done_runs[command, config]
  return run
