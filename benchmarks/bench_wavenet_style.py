"""Coordinate-descent decoding speed: incremental window steps against full recompute.

    python -m benchmarks.bench_wavenet_style [--seconds 0.25 1 4] [--block 64] [--steps 20] [--timed-blocks 3]
    python -m benchmarks.bench_wavenet_style --seconds 1 --full-sweep    # also time one whole 1 s sweep

Standard-size WaveNet (2 x 10 layers, 32/32/256) with random weights; content
and style are random codes (speed does not depend on them). For each length the
table gives the time of one block step (K Adam steps on the block's logits,
the freeze, the cache refresh), timed over a few blocks after compilation, and
the sweep time it implies (blocks x block time); with --full-sweep the
incremental sweep of the first length is also run end to end.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import cli
from common.errors import InputError
from corpora import schema
from styletransfer import wavenet_style as ws
from wavenet.model import WaveNet

STANDARD = dict(num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=32, gate_channels=32,
                skip_channels=256, head_channels=256, num_classes=256)


def make_problem(model, params, length, block, steps):
  """(style problem, content codes [length] int32) of random content and style codes, default layers and weights."""
  rng = np.random.default_rng(0)
  content_layer, style_layers = ws.default_layers(model.num_layers)
  content = jnp.asarray(rng.integers(0, model.num_classes, length), jnp.int32)
  style = jnp.asarray(rng.integers(0, model.num_classes, length), jnp.int32)
  task = ws.make_style_task(model, params, content, style, content_layer, style_layers, content_weight=1.0,
                            style_weight=100.0, block=block, steps=steps, learning_rate=0.1)
  return task.problem, content


def time_block_steps(problem, params, init, incremental, timed_blocks):
  step = jax.jit(ws.make_block_step(problem, incremental))
  sweep = jax.jit(ws.initial_sweep)(problem, params, init)
  tic = time.perf_counter()
  sweep, loss = jax.block_until_ready(step(params, sweep, 0))
  compile_s = time.perf_counter() - tic
  tic = time.perf_counter()
  for index in range(1, 1 + timed_blocks):
    sweep, loss = step(params, sweep, index % problem.num_blocks)
  jax.block_until_ready(loss)
  return compile_s, (time.perf_counter() - tic) / timed_blocks


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_wavenet_style", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=cli.positive_float, nargs="+", default=[0.25, 1.0, 4.0],
                      help=f"signal lengths ({schema.SAMPLE_RATE} Hz)")
  parser.add_argument("--block", type=int, default=64)
  parser.add_argument("--steps", type=int, default=20, help="Adam steps per block")
  parser.add_argument("--timed-blocks", type=int, default=3, help="blocks timed per method and length")
  parser.add_argument("--full-sweep", action="store_true", help="also run one whole incremental sweep")
  args = parser.parse_args(argv)
  for name in ("block", "steps", "timed_blocks"):
    if getattr(args, name) < 1:
      raise InputError(f"--{name.replace('_', '-')} must be at least 1")
  if min(args.seconds) * schema.SAMPLE_RATE < 1:
    raise InputError(f"--seconds {min(args.seconds)}: give lengths of at least one sample")
  model = WaveNet(**STANDARD)
  params = model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
  print(f"WaveNet 2x10, 32/32/256, receptive field {model.receptive_field}; block {args.block}, "
        f"{args.steps} Adam steps per block; {jax.devices()[0].platform}")
  print(f"{'seconds':>7} | {'blocks':>6} | {'incremental ms/block':>20} | {'full ms/block':>13} | "
        f"{'incremental sweep s':>19} | {'full sweep s':>12} | {'speed-up':>8}")
  for seconds in args.seconds:
    length = int(seconds * schema.SAMPLE_RATE)
    problem, init = make_problem(model, params, length, args.block, args.steps)
    _, incremental = time_block_steps(problem, params, init, True, args.timed_blocks)
    _, full = time_block_steps(problem, params, init, False, args.timed_blocks)
    blocks = problem.num_blocks
    print(f"{seconds:7.2f} | {blocks:6d} | {1000 * incremental:20.1f} | {1000 * full:13.1f} | "
          f"{blocks * incremental:19.1f} | {blocks * full:12.1f} | {full / incremental:7.1f}x")
  if args.full_sweep:
    problem, init = make_problem(model, params, int(args.seconds[0] * schema.SAMPLE_RATE), args.block, args.steps)
    tic = time.perf_counter()
    jax.block_until_ready(ws.coordinate_descent(problem, params, init))
    print(f"one whole incremental sweep of {args.seconds[0]} s, compilation included: "
          f"{time.perf_counter() - tic:.1f} s")


if __name__ == "__main__":
  cli.run(main)
