"""Slow tier: every benchmark runs on tiny arguments and prints its table; the shipped models work as the README says."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import dsp
from experiments import sample_garble
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

BENCHMARKS = {
    "bench_wavenet_sampling": ["--seconds", "0.01", "--batches", "1", "--naive-samples", "2", "--repeats", "1"],
    "bench_wavenet_train": ["--batches", "1", "--samples", "64", "--steps", "1", "--profile", "3",
                            "--xla-option", "xla_cpu_experimental_ynn_fusion_type="],
    "bench_wavenet_style": ["--seconds", "0.05", "--block", "8", "--steps", "1", "--timed-blocks", "1"],
    "bench_spectrogram_style": ["--seconds", "0.5", "--iterations", "2", "--filters", "8",
                                "--griffin-lim-iterations", "2"],
    "bench_matmul": ["--repeats", "1"],
    "bench_f0_trackers": ["--voices", "en-us+m3", "--seconds", "1"],
    "bench_garble": ["--num", "1", "--seconds", "0.3", "--seeds", "0", "--variants", "frames", "direct --sharpen 1",
                     "--out", os.path.join(tempfile.gettempdir(), "bench_garble_test")],
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_prints_its_table(name):
  done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *BENCHMARKS[name]], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-2000:]
  assert len(done.stdout.strip().splitlines()) >= 2, done.stdout[-2000:]  # a header and at least one row


def test_bench_wavenet_train_prints_a_row_for_each_compared_program():
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench_wavenet_train", "--batches", "1", "--samples", "64",
                         "--steps", "1", "--no-config-batches", "--without-kernels", "--gradient-ablation"],
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-2000:]
  labels = [line.split("|")[2].strip() for line in done.stdout.splitlines()[2:]]
  assert labels == ["default", "XLA only", "XLA only, no layer weight gradients", "XLA only, no head weight gradients"], \
      done.stdout


def test_benchmark_bad_input_is_one_line_and_exit_2():
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench_wavenet_sampling", "--repeats", "0"],
                        cwd=REPO_ROOT, capture_output=True, text=True)
  assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["no_equals_sign", "xla_no_such_option=1"])
def test_an_xla_option_the_training_benchmark_cannot_use_is_one_line_and_exit_2(option):
  done = subprocess.run([sys.executable, "-m", "benchmarks.bench_wavenet_train", "--xla-option", option],
                        cwd=REPO_ROOT, capture_output=True, text=True)
  assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_the_readmes_first_command_gives_voiced_garble_of_both_genders(tmp_path, capsys):
  sample_garble.main(["--gender", "both", "--num", "2", "--seconds", "2", "--out", str(tmp_path)])
  capsys.readouterr()
  for gender, (low, high) in (("female", (165, 255)), ("male", (85, 155))):
    for index in range(2):
      audio = dsp.load_audio(os.path.join(tmp_path, f"{gender}_{index:02d}.wav"), 16000)
      f0, voiced = dsp.track_summary(dsp.f0_track(audio, 16000))
      assert voiced > 0.3 and low * 0.9 <= f0 <= high * 1.1, (gender, index, f0, voiced)
      assert os.path.exists(os.path.join(tmp_path, f"{gender}_{index:02d}.png"))


def test_the_shipped_direct_wavenet_still_loads_and_samples(tmp_path, capsys):
  sample_garble.main(["--mode", "direct", "--gender", "male", "--num", "1", "--seconds", "0.1", "--out", str(tmp_path)])
  assert "male: " in capsys.readouterr().out
  assert np.isfinite(dsp.load_audio(os.path.join(tmp_path, "male_00.wav"), 16000)).all()


def test_the_shipped_frame_vlae_fills_in_the_bands_of_an_8_khz_recording(tmp_path, capsys):
  from corpora.voices import render, roster
  from experiments import interpolate
  kal = next(s for s in roster.UNSEEN_VARIANTS if s.voice == "kal")  # flite's 8 kHz voice
  a, b = (dsp.from_int16(render.render(speaker, [(0, text)])[0].pcm) for speaker, text in (
      (kal, "The quick brown fox jumps over the lazy dog near the river bank."),
      (roster.FLITE_SLT, "She sells sea shells by the sea shore every summer morning.")))
  path_a, path_b = tmp_path / "kal_8k.wav", tmp_path / "slt.wav"
  dsp.save_audio(str(path_a), dsp.resample(a, 16000, 8000), 8000)  # stored at its own rate
  dsp.save_audio(str(path_b), b, 16000)
  interpolate.main(["--a", str(path_a), "--b", str(path_b), "--steps", "2", "--seconds", "1.5",
                    "--out", str(tmp_path / "path")])
  out = capsys.readouterr().out
  assert "band-limited" in out and "its top 7 of 24 log-mel bands are filled in" in out
  with open(tmp_path / "path" / "path.json") as file:
    bands = json.load(file)["input_mel_bands"]
  assert bands[0]["filled"] and bands[0]["observed"] == 17 and 3600 < bands[0]["bandwidth_hz"] < 4000
  assert bands[1] == {"bandwidth_hz": bands[1]["bandwidth_hz"], "observed": 24, "filled": False}
