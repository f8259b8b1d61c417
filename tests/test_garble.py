"""WaveNet on voices/small end to end: smoke training via the CLI, then sample_garble, eval_wavenet and wavenet_style."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corpora
import dsp
from common import cli
from common.errors import InputError
from corpora import batching
from experiments import eval_wavenet, sample_garble, wavenet_style, wavenet_style_pairs
from experiments.configs import wavenet_voices
from tests.conftest import REPO_ROOT
from training.checkpoint import load_model_checkpoint
from wavenet import evaluate as wavenet_evaluate
from wavenet import loss as wavenet_loss
from wavenet import pretrained, sampling
from wavenet import train as wavenet_train



def run_module(module, *args, data_dir=None):
  env = dict(os.environ, ELECTRIC_BEATS_DATA=data_dir) if data_dir else None
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                        env=env, timeout=600)


@pytest.fixture(scope="module")
def smoke_run(voices_dir, tmp_path_factory):
  """A workdir trained for the smoke config's few steps on voices/small."""
  workdir = str(tmp_path_factory.mktemp("smoke"))
  result = run_module("experiments.train_wavenet", "--config", "experiments/configs/wavenet_voices.py:smoke",
                      "--workdir", workdir, data_dir=voices_dir)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def test_train_wavenet_smoke_config_writes_checkpoint_and_metrics(smoke_run):
  model_config, params, labels = load_model_checkpoint(smoke_run)
  assert model_config["layers_per_stack"] == 3 and "skip_kernel" in params["params"]
  assert labels["speaker_gender"] == {"flite_slt": "female", "flite_rms": "male"}
  rows = open(os.path.join(smoke_run, "metrics.csv")).read()
  assert "train/bits_per_sample" in rows and "eval/bits_per_sample" in rows


def test_train_wavenet_refuses_a_checkpoint_of_another_config(smoke_run, voices_dir):
  result = run_module("experiments.train_wavenet", "--config", "experiments/configs/wavenet_voices.py:smoke",
                      "--workdir", smoke_run, "--config.model.residual_channels=4", data_dir=voices_dir)
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "another model config" in result.stderr


@pytest.mark.slow
def test_train_wavenet_missing_config_file_is_one_line(tmp_path):
  result = run_module("experiments.train_wavenet", "--config", str(tmp_path / "nosuch.py"), "--workdir",
                      str(tmp_path / "run"))
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
  assert result.stderr.startswith("error: --config: cannot load the config file ([Errno 2] No such file")
  assert not (tmp_path / "run").exists()


def test_sample_garble_writes_audio_pictures_and_f0_table(smoke_run, tmp_path, capsys):
  sample_garble.main(["--mode", "direct", "--checkpoint", smoke_run, "--gender", "both", "--num", "2", "--seconds", "0.25",
                      "--seed", "3", "--out", str(tmp_path)])
  summary = [line for line in capsys.readouterr().out.splitlines() if " of 2 voiced" in line]
  assert [line.split(":")[0] for line in summary] == ["female", "male"]
  names = sorted(os.listdir(tmp_path))
  assert names == [f"{g}_{i:02d}.{e}" for g in ("female", "male") for i in range(2) for e in ("png", "wav")] + [
      "summary.json"]
  audio = dsp.load_audio(tmp_path / "male_01.wav", 16000)
  assert audio.shape == (4000,) and np.abs(audio).max() <= 1.0
  with open(tmp_path / "summary.json") as file:
    samples = json.load(file)["samples"]
  assert [(s["file"], s["gender"]) for s in samples] == [("female_00.wav", "female"), ("female_01.wav", "female"),
                                                         ("male_00.wav", "male"), ("male_01.wav", "male")]
  assert samples[3]["active_share"] == pytest.approx(dsp.active_fraction(audio, 16000), abs=1e-6)
  sample_garble.main(["--mode", "direct", "--checkpoint", smoke_run, "--speaker", "flite_rms", "--num", "1", "--seconds", "0.1",
                      "--out", str(tmp_path / "rms")])
  assert sorted(os.listdir(tmp_path / "rms")) == ["flite_rms_00.png", "flite_rms_00.wav", "summary.json"]


def test_sample_garble_continues_a_prime_from_its_last_receptive_field(smoke_run, tmp_path):
  model, params, labels = sample_garble.load_conditioned_wavenet(smoke_run)
  t = np.arange(4000) / 16000
  dsp.save_audio(tmp_path / "prime.wav", np.concatenate([0.5 * np.sin(2 * np.pi * 150 * t), np.zeros(3000)]), 16000)
  sample_garble.main(["--mode", "direct", "--checkpoint", smoke_run, "--gender", "male", "--num", "2", "--seconds", "0.05", "--seed", "4",
                      "--prime", str(tmp_path / "prime.wav"), "--out", str(tmp_path / "out")])
  written = np.stack([dsp.load_audio(tmp_path / "out" / f"male_{i:02d}.wav", 16000) for i in range(2)])
  prime = sample_garble.prime_codes(str(tmp_path / "prime.wav"), model, 2)
  codes = dsp.quantize(dsp.trim_silence(dsp.load_audio(tmp_path / "prime.wav", 16000)))[-model.receptive_field:]
  np.testing.assert_array_equal(prime, np.stack([codes, codes]))
  ids = {"speaker": jnp.array([-1, -1], jnp.int32), "gender": jnp.full((2,), labels["gender"].index("male"), jnp.int32)}
  conditioning = sampling.prepare_conditioning(model, params, 2, model.receptive_field + 800, ids)
  expected = sampling.sample(model, params, jax.random.key(4), 800, conditioning, prime=prime, temperature=0.9)
  np.testing.assert_allclose(written, dsp.dequantize(np.asarray(expected)), atol=1e-4)
  dsp.save_audio(tmp_path / "short.wav", np.full(model.receptive_field - 1, 0.1), 16000)
  with pytest.raises(InputError, match=f"{model.receptive_field - 1} samples of sound, shorter than the model's receptive field"):
    sample_garble.main(["--mode", "direct", "--checkpoint", smoke_run, "--prime", str(tmp_path / "short.wav"), "--out", str(tmp_path / "x")])
  assert not (tmp_path / "x").exists()
  dsp.save_audio(tmp_path / "silent.wav", np.zeros(16000), 16000)
  with pytest.raises(InputError, match="silent.wav: the clip is silent"):
    sample_garble.main(["--mode", "direct", "--checkpoint", smoke_run, "--prime", str(tmp_path / "silent.wav"), "--out", str(tmp_path / "x")])
  assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args,phrase", [
    (["--seconds", "0"], "--seconds: must be > 0"),
    (["--seconds", "-1"], "--seconds: must be > 0"),
    (["--seconds", "nan"], "--seconds: must be a finite number"),
    (["--seconds", "1e-6"], "--seconds 1e-06 is less than one sample"),
    (["--temperature", "inf"], "--temperature: must be a finite number"),
    (["--gender", "robot"], "invalid choice"),
    (["--speaker", "nobody"], "unknown speaker 'nobody'; known speakers: flite_rms, flite_slt"),
    (["--out", "/proc/garble"], "cannot write to /proc"),
    (["--prime", "/nonexistent/voice.wav"], "voice.wav"),
    (["--floor", "0.004"], "--floor 0.004: give a probability below 1/256"),
    (["--mode", "frames", "--sharpen", "1"], "give them with --mode direct"),
])
def test_sample_garble_bad_input_is_one_line_and_exit_2(smoke_run, capsys, args, phrase):
  with pytest.raises(SystemExit) as exit_info:
    cli.run(sample_garble.main, ["--mode", "direct", "--checkpoint", smoke_run, *args])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and phrase in error


@pytest.mark.slow
def test_sample_garble_refuses_missing_and_foreign_checkpoints(tmp_path, capsys):
  result = run_module("experiments.sample_garble", "--checkpoint", str(tmp_path / "missing"))
  assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no such checkpoint" in result.stderr
  with pytest.raises(SystemExit):
    cli.run(sample_garble.main, ["--checkpoint", str(tmp_path)])
  assert "holds no checkpoint" in capsys.readouterr().err


def test_eval_wavenet_matches_the_training_loss_and_prints_each_speaker(smoke_run, voices_dir, capsys):
  model, params, _ = pretrained.load_wavenet(smoke_run)
  clips = batching.preload(corpora.load_split("voices", "small", "validation", voices_dir))
  batches = list(batching.eval_batches(clips, 2, model.receptive_field, 64, max_windows=5))
  scores = wavenet_evaluate.bits_per_window(model, params, batches, ("speaker", "gender"))
  loss_fn = wavenet_loss.make_loss_fn(model, ("speaker", "gender"))
  weights = [batch["weight"].sum() for batch in batches]
  nats = sum(float(loss_fn(params, batch, None, step=0, train=False)[0]) * weight
             for batch, weight in zip(batches, weights)) / sum(weights)
  assert scores["bits"].shape == (5,) and scores["bits"].mean() == pytest.approx(nats / np.log(2), rel=1e-5)
  absent = wavenet_evaluate.bits_per_window(model, params, batches, ("speaker", "gender"), drop_speaker=True)
  assert not np.allclose(absent["bits"], scores["bits"])
  common = ["--checkpoint", smoke_run, "--data-dir", voices_dir, "--crop", "64"]
  eval_wavenet.main(common + ["--corpus-config", "small", "--max-windows", "5"])
  lines = capsys.readouterr().out.splitlines()
  assert [line.split()[0] for line in lines[2:]] == ["flite_slt", "flite_rms", "all", "all", "all"]
  assert lines[-1].split()[:2] == ["all", "5"] and float(lines[-1].split()[2]) == pytest.approx(scores["bits"].mean(),
                                                                                            abs=1e-3)
  with pytest.raises(SystemExit) as exit_info:
    cli.run(eval_wavenet.main, common + ["--corpus-config", "full"])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and "trained on other speakers" in error


def test_wavenet_style_cli_writes_both_decodings_and_refuses_bad_layers(smoke_run, tmp_path, capsys):
  t = np.arange(800) / 16000
  dsp.save_audio(tmp_path / "c.wav", 0.5 * np.sin(2 * np.pi * 120 * t), 16000)
  dsp.save_audio(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 230 * t), 16000)
  common = ["--content", str(tmp_path / "c.wav"), "--style", str(tmp_path / "s.wav"), "--checkpoint", smoke_run]
  wavenet_style.main(common + ["--out", str(tmp_path / "o.wav"), "--block", "16", "--steps", "2", "--joint-steps", "3"])
  assert {"o.wav", "o.png", "o_joint.wav", "o_joint.png", "o_losses.png", "o.json"} <= set(os.listdir(tmp_path))
  report = json.loads((tmp_path / "o.json").read_text())
  assert set(report["methods"]) == {"coordinate", "joint"}
  assert report["methods"]["coordinate"]["total"] <= report["start"]["content"] + report["start"]["style"] + 1e-6
  with pytest.raises(SystemExit) as exit_info:
    cli.run(wavenet_style.main, common + ["--out", str(tmp_path / "x.wav"), "--style-layers", "0,9"])
  assert exit_info.value.code == 2 and "layer 9 out of range" in capsys.readouterr().err


def test_wavenet_style_pairs_compares_methods_on_male_female_pairs(smoke_run, voices_dir, tmp_path):
  wavenet_style_pairs.main(["--checkpoint", smoke_run, "--corpus-config", "small", "--data-dir", voices_dir,
                            "--pairs", "2", "--seconds", "0.05", "--block", "16", "--steps", "2", "--joint-steps", "2",
                            "--out", str(tmp_path)])
  results = json.loads((tmp_path / "results.json").read_text())
  assert len(results["pairs"]) == 2
  for row in results["pairs"]:
    assert (row["content_speaker"], row["style_speaker"]) == ("flite_rms", "flite_slt")
    assert row["coordinate"]["total"] <= row["start"]["total"] + 1e-6
  assert results["coordinate_wins"] == sum(row["coordinate"]["total"] < row["joint"]["total"]
                                           for row in results["pairs"])
  for name in ("content", "style", "coordinate", "joint"):
    assert os.path.exists(tmp_path / "pair_1" / f"{name}.wav") and os.path.exists(tmp_path / "pair_1" / f"{name}.png")


@pytest.mark.slow
def test_training_refuses_a_num_classes_the_corpus_codes_do_not_have(tmp_path):
  config = wavenet_voices.get_config("smoke")
  config.model.num_classes = 128
  with pytest.raises(InputError, match="model.num_classes is 128, but the corpus codes have 256"):
    wavenet_train.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)
