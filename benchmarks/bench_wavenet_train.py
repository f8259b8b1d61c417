"""Training-step throughput of the standard WaveNet (2 x 10 layers, 32/32/256, 256 classes).

    python -m benchmarks.bench_wavenet_train [--batches 1 4] [--samples 16000] [--steps 10]

Prints one table: compile time, step time and predicted samples per second per
batch size, for a full AdamW step (forward, backward, update) on random codes.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import cli
from common.errors import InputError
from training import state as state_lib
from wavenet import loss as loss_lib
from wavenet.model import WaveNet

STANDARD = dict(num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=32, gate_channels=32,
                skip_channels=256, head_channels=256, num_classes=256, global_categories=(("speaker", 16),))


def measure(batch_size, samples, steps):
  model = WaveNet(**STANDARD)
  optimizer = state_lib.make_optimizer(1e-3, 1000, 10, 0.0, 1.0)
  params = model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
  state = state_lib.create_state(params, optimizer, 0)
  step = jax.jit(state_lib.make_train_step(loss_lib.make_loss_fn(model, ("speaker",)), optimizer), donate_argnums=(0,))
  rng = np.random.default_rng(0)
  batch = {"codes": jnp.asarray(rng.integers(0, 256, (batch_size, model.receptive_field + samples)), jnp.int32),
           "speaker": jnp.zeros((batch_size,), jnp.int32)}
  key = jax.random.key(0)
  tic = time.perf_counter()
  state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - tic
  times = []
  for _ in range(steps):
    tic = time.perf_counter()
    state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - tic)
  step_s = float(np.median(times))
  return compile_s, step_s, batch_size * samples / step_s


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_wavenet_train", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="batch sizes to time")
  parser.add_argument("--samples", type=int, default=16000, help="predicted samples per example")
  parser.add_argument("--steps", type=int, default=10, help="timed steps per batch size (median reported)")
  args = parser.parse_args(argv)
  if min(args.batches) < 1 or args.samples < 1 or args.steps < 1:
    raise InputError("--batches, --samples and --steps must be at least 1")
  print(f"WaveNet 2x10 layers, residual 32, gate 32+32, skip 256, 256 classes; {jax.devices()[0].platform}, "
        f"{jax.device_count()} device(s)")
  print(f"{'batch':>12} | {'compile s':>9} | {'step ms':>8} | {'samples/s':>10}")
  for batch_size in args.batches:
    compile_s, step_s, rate = measure(batch_size, args.samples, args.steps)
    print(f"{batch_size:>4} x {args.samples:<5} | {compile_s:9.1f} | {1000 * step_s:8.1f} | {rate:10.0f}")


if __name__ == "__main__":
  cli.run(main)
