"""Experiment configs: light to import, one documented field per line, a smoke variant made in one place."""

import importlib
import subprocess
import sys

import ml_collections
import pytest

from experiments import configs
from tests.conftest import REPO_ROOT

CONFIGS = ["wavenet_voices", "vae_digits", "vlae_voices", "tagger_music", "vocoder_voices", "source_filter_voices",
           "frame_prior_voices", "frame_vlae_voices"]


def test_the_sizes_written_into_configs_match_their_sources():
  from corpora.voices import roster
  from dsp import excitation
  from vocoder import features
  assert configs.VOICES_SPEAKERS == {"full": len(roster.FULL_SPEAKERS + roster.FULL_HELDOUT),
                                     "small": len(roster.SMALL_SPEAKERS + roster.SMALL_HELDOUT)}
  assert (configs.FRAME_CHANNELS, configs.EXCITATION_CHANNELS) == (features.LOCAL_CHANNELS, excitation.NUM_CHANNELS)


def test_importing_every_config_loads_nothing_heavy():
  code = ("import importlib, sys\n"
          f"for name in {CONFIGS!r}:\n"
          "  importlib.import_module('experiments.configs.' + name).get_config('smoke')\n"
          "print(sorted(m for m in ('jax', 'tensorflow_datasets', 'librosa', 'matplotlib', 'corpora', 'dsp')"
          " if m in sys.modules))")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
  assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("config_file", CONFIGS)
def test_every_config_docstring_gives_its_command_and_result(config_file):
  doc = importlib.import_module(f"experiments.configs.{config_file}").__doc__
  assert "python -m experiments.train_" in doc and "result" in doc.lower()


def test_a_smoke_override_must_name_exactly_one_field():
  config = ml_collections.ConfigDict({"data": {"batch_size": 4}, "eval": {"batch_size": 100}, "train": {"steps": 9}})
  with pytest.raises(ValueError, match="'batch_size' matches 2 config fields"):
    configs.override_fields(config, {"batch_size": 2})
  with pytest.raises(ValueError, match="'stepz' matches 0 config fields"):
    configs.override_fields(config, {"stepz": 2})
  configs.override_fields(config, {"data.batch_size": 2, "steps": 3})
  assert (config.data.batch_size, config.eval.batch_size, config.train.steps) == (2, 100, 3)


@pytest.mark.parametrize("config_file", CONFIGS)
def test_every_config_file_rejects_an_unknown_variant(config_file):
  module = importlib.import_module(f"experiments.configs.{config_file}")
  with pytest.raises(ValueError, match="unknown variant 'foo'"):
    module.get_config("foo")


def _setting_names(config, prefix=""):
  """The dotted names of a ConfigDict's settings."""
  names = set()
  for name, value in config.items():
    is_group = isinstance(value, ml_collections.ConfigDict)
    names |= _setting_names(value, f"{prefix}{name}.") if is_group else {prefix + name}
  return names


@pytest.mark.parametrize("config_file", CONFIGS)
def test_every_smoke_variant_is_a_short_run_that_evaluates_and_checkpoints(config_file):
  module = importlib.import_module(f"experiments.configs.{config_file}")
  smoke, default = module.get_config("smoke"), module.get_config()
  # The same settings (so a --config.X override applies to both), but a run of a few steps on small batches
  # that still evaluates, checkpoints and logs within them, while the default trains for hundreds of steps.
  assert _setting_names(smoke) == _setting_names(default) and "train.num_steps" in _setting_names(smoke)
  assert smoke.train.num_steps <= 3 < 250 <= default.train.num_steps
  for every in ("eval_every", "checkpoint_every", "log_every"):
    assert 1 <= smoke.train[every] <= smoke.train.num_steps
  assert smoke.data.batch_size < default.data.batch_size
  if "config" in smoke.data:  # The corpus; vae_digits reads sklearn's digits in both.
    assert (smoke.data.config, default.data.config) == ("small", "full")
  # Each call builds a fresh config: editing one leaves the next call's alone.
  smoke.train.num_steps = 10**6
  assert module.get_config("smoke").train.num_steps <= 3


@pytest.mark.parametrize("config_file", CONFIGS)
@pytest.mark.parametrize("variant", [(), ("smoke",)])
def test_every_config_splits_its_batch_into_whole_microbatches(config_file, variant):
  config = importlib.import_module(f"experiments.configs.{config_file}").get_config(*variant)
  assert config.train.microbatches >= 1 and config.data.batch_size % config.train.microbatches == 0
