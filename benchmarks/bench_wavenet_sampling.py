"""Sampling speed of the standard WaveNet (2 x 10 layers, 32/32/256, 256 classes).

    python -m benchmarks.bench_wavenet_sampling [--seconds 1] [--batches 1 32] [--naive-samples 300]

Prints one table: compile time and samples per second (aggregate over the
batch) of the incremental sampler (wavenet/sampling.py) against the naive
sampler, which re-runs the network over the whole receptive field for each
new sample, also as one jit-compiled scan.
"""

import argparse
import functools
import time

import jax
import jax.numpy as jnp

from corpora import schema
from dsp.errors import InputError
from experiments import cli
from wavenet import sampling
from wavenet.model import WaveNet

STANDARD = dict(num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=32, gate_channels=32,
                skip_channels=256, head_channels=256, num_classes=256, global_categories=(("gender", 2),))


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def naive_sample(model, params, key, num_samples, gender):
  """Each sample from a full forward pass over the last receptive_field codes."""
  batch = gender.shape[0]
  window = jnp.full((batch, model.receptive_field), 128, jnp.int32)

  def body(window, key_t):
    logits = model.apply(params, window, {"gender": gender}, padding="valid").head[:, -1]
    code = jax.random.categorical(key_t, logits).astype(jnp.int32)
    return jnp.concatenate([window[:, 1:], code[:, None]], axis=1), code

  _, codes = jax.lax.scan(body, window, jax.random.split(key, num_samples))
  return codes.T


def timed(function):
  tic = time.perf_counter()
  jax.block_until_ready(function())
  return time.perf_counter() - tic


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_wavenet_sampling", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=float, default=1.0,
                      help=f"audio per stream for the fast sampler ({schema.SAMPLE_RATE} Hz)")
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="numbers of parallel streams")
  parser.add_argument("--naive-samples", type=int, default=300, help="samples per stream for the naive sampler")
  args = parser.parse_args(argv)
  num_samples = int(args.seconds * schema.SAMPLE_RATE)
  if num_samples < 1 or args.naive_samples < 1 or min(args.batches) < 1:
    raise InputError("--seconds must give at least one sample, and --naive-samples and --batches must be at least 1")
  model = WaveNet(**STANDARD)
  params = model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
  print(f"WaveNet 2x10 layers, 32/32/256, 256 classes, receptive field {model.receptive_field}; "
        f"{jax.devices()[0].platform}, {jax.device_count()} device(s)")
  print(f"{'sampler':<12} | {'streams':>7} | {'samples':>7} | {'compile s':>9} | {'samples/s':>10}")
  for batch in args.batches:
    gender = jnp.arange(batch, dtype=jnp.int32) % 2
    conditioning = sampling.prepare_conditioning(model, params, batch, num_samples, {"gender": gender})
    runs = {
        "incremental": (num_samples, lambda n, k: sampling.sample(model, params, k, n, conditioning)),
        "naive": (args.naive_samples, lambda n, k: naive_sample(model, params, k, n, gender)),
    }
    for name, (n, run) in runs.items():
      first = timed(lambda: run(n, jax.random.key(1)))
      second = timed(lambda: run(n, jax.random.key(2)))
      print(f"{name:<12} | {batch:>7} | {n:>7} | {first - second:9.1f} | {batch * n / second:10.0f}")


if __name__ == "__main__":
  cli.run(main)
