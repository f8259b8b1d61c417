"""Sampling speed of the standard WaveNet (2 x 10 layers, 32/32/256, 256 classes) and of the vocoders.

    python -m benchmarks.bench_wavenet_sampling [--seconds 1] [--batches 1 32] [--naive-samples 300] [--unroll 1 4]

Prints one table: compile time and samples per second (aggregate over the
batch, the fastest of --repeats runs) of the incremental sampler (wavenet/sampling.py), one row per loop
unrolling, against the naive sampler, which re-runs the network over the whole
receptive field for each new sample, also as one jit-compiled scan. Two more
rows per batch: the WaveNet vocoder (experiments/configs/vocoder_voices.py,
incremental, with its frame and excitation conditioning) and the
source-filter vocoder (experiments/configs/source_filter_voices.py, one
non-autoregressive pass), both with random weights.
"""

import argparse
import functools
import time

import jax
import jax.numpy as jnp

from common import cli
from common.errors import InputError
from corpora import schema
from dsp import excitation as excitation_lib
from experiments.configs import source_filter_voices, vocoder_voices
from vocoder import features as features_lib
from vocoder.source_filter import build_source_filter
from wavenet import sampling
from wavenet.model import build_model, WaveNet

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


def _incremental(model, params, conditioning, unroll, num_samples, key):
  return sampling.sample(model, params, key, num_samples, conditioning, unroll=unroll)


def vocoder_runs(batch, num_samples):
  """{row name: (samples, run(n, key))} of the two vocoders at `batch` streams (random weights, random conditioning)."""
  local = jax.random.normal(jax.random.key(3), (batch, num_samples + 1, features_lib.LOCAL_CHANNELS))
  source = jax.random.normal(jax.random.key(4), (batch, num_samples + 1, excitation_lib.NUM_CHANNELS))
  wavenet = build_model(vocoder_voices.get_config().model)
  wavenet_params = wavenet.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32), {"speaker": jnp.zeros((1,), jnp.int32)},
                                local=local[:1, :8], excitation=source[:1, :8])
  conditioning = sampling.prepare_conditioning(wavenet, wavenet_params, batch, num_samples + 1,
                                               {"speaker": jnp.full((batch,), -1, jnp.int32)}, local=local,
                                               excitation=source)
  source_filter = build_source_filter(source_filter_voices.get_config().model)
  noise = jax.random.normal(jax.random.key(5), (batch, num_samples))
  filter_params = source_filter.init(jax.random.key(0), local[:1, :64], source[:1, :64], noise[:1, :64])
  render = jax.jit(source_filter.apply)
  return {"vocoder WaveNet": (num_samples, functools.partial(_incremental, wavenet, wavenet_params, conditioning,
                                                             sampling.UNROLL)),
          "vocoder NSF": (num_samples, lambda n, k: render(filter_params, local[:, :n], source[:, :n], noise[:, :n]))}


def timed(function):
  tic = time.perf_counter()
  jax.block_until_ready(function())
  return time.perf_counter() - tic


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_wavenet_sampling", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=cli.positive_float, default=1.0,
                      help=f"audio per stream for the fast sampler ({schema.SAMPLE_RATE} Hz)")
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="numbers of parallel streams")
  parser.add_argument("--naive-samples", type=int, default=300, help="samples per stream for the naive sampler")
  parser.add_argument("--repeats", type=int, default=3, help="timed runs after compilation; the fastest is shown")
  parser.add_argument("--unroll", type=int, nargs="+", default=[sampling.UNROLL],
                      help="time steps per loop iteration of the incremental sampler, one row each")
  args = parser.parse_args(argv)
  num_samples = cli.seconds_to_samples(args.seconds, schema.SAMPLE_RATE)
  if min(args.naive_samples, args.repeats, *args.batches, *args.unroll) < 1:
    raise InputError("--naive-samples, --repeats, --batches and --unroll must be at least 1")
  model = WaveNet(**STANDARD)
  params = model.init(jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
  print(f"WaveNet 2x10 layers, 32/32/256, 256 classes, receptive field {model.receptive_field}; "
        f"{jax.devices()[0].platform}, {jax.device_count()} device(s)")
  print(f"{'sampler':<16} | {'streams':>7} | {'samples':>7} | {'compile s':>9} | {'samples/s':>10}")
  for batch in args.batches:
    gender = jnp.arange(batch, dtype=jnp.int32) % 2
    conditioning = sampling.prepare_conditioning(model, params, batch, num_samples, {"gender": gender})
    runs = {f"incremental u{unroll}": (num_samples, functools.partial(_incremental, model, params, conditioning, unroll))
            for unroll in args.unroll}
    runs["naive"] = (args.naive_samples, lambda n, k: naive_sample(model, params, k, n, gender))
    runs.update(vocoder_runs(batch, num_samples))
    for name, (n, run) in runs.items():
      first = timed(lambda: run(n, jax.random.key(1)))
      best = min(timed(lambda: run(n, jax.random.key(2 + repeat))) for repeat in range(args.repeats))
      print(f"{name:<16} | {batch:>7} | {n:>7} | {first - best:9.1f} | {batch * n / best:10.0f}")


if __name__ == "__main__":
  cli.run(main)
