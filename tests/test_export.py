"""Exporting a checkpoint's parameters as a model folder (what models/ ships)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from common.errors import InputError
from training import state as state_lib
from training.checkpoint import Checkpointer, export_parameters, load_model_checkpoint


def test_export_keeps_parameters_config_and_labels_and_drops_the_optimiser(tmp_path):
  params = {"params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}}
  state = state_lib.create_state(params, optax.adam(1e-3), seed=0)
  checkpointer = Checkpointer(str(tmp_path / "run"), keep=1, save_every=1)
  checkpointer.save(7, state, {"kind": "toy"}, {"speaker": ["a", "b"]}, force=True)
  checkpointer.wait()
  checkpointer.close()
  (tmp_path / "run" / "metrics.csv").write_text("step,name,value\n7,eval/loss,1.0\n")
  assert export_parameters(str(tmp_path / "run"), str(tmp_path / "model")) == 7
  config, restored, labels = load_model_checkpoint(str(tmp_path / "model"))
  assert config == {"kind": "toy"} and labels == {"speaker": ["a", "b"]}
  np.testing.assert_array_equal(restored["params"]["w"], params["params"]["w"])
  assert (tmp_path / "model" / "metrics.csv").read_text().startswith("step,name,value")
  exported = sum(f.stat().st_size for f in (tmp_path / "model").rglob("*") if f.is_file())
  trained = sum(f.stat().st_size for f in (tmp_path / "run" / "checkpoints").rglob("*") if f.is_file())
  assert exported < trained  # the Adam moments are gone
  with pytest.raises(InputError, match="exists"):
    export_parameters(str(tmp_path / "run"), str(tmp_path / "model"))
