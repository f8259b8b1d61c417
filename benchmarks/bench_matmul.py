"""The matmul ceiling of this machine, under each of XLA's CPU matmul backends.

    python -m benchmarks.bench_matmul [--repeats 5]

Times float32 matmuls of the shapes that dominate the project's heavy
workloads (best of --repeats, after compilation), once per backend: XLA's
default (Eigen), XNNPACK (--xla_cpu_use_xnnpack) and oneDNN
(--xla_cpu_use_onednn), each in a fresh process because XLA reads its flags at
start-up. Then prints the sustained rate each speed target of the project
would need, so the table says at a glance which targets this CPU can reach.
Run it on an idle machine.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from common import cli
from common.errors import InputError

BACKENDS = {"default": "", "xnnpack": "--xla_cpu_use_xnnpack=true", "onednn": "--xla_cpu_use_onednn=true"}

# (workload, m, k, n): [m, k] @ [k, n].
SHAPES = (
    ("WaveNet train: all skip projections, 1 x 16000", 16000, 640, 256),
    ("WaveNet train: head 1x1 conv, 1 x 16000", 16000, 256, 256),
    ("WaveNet train: dilated filter+gate, 1 x 16000", 16000, 64, 64),
    ("Ulyanov style: unfolded random conv, 10 s", 431, 11 * 1025, 4096),
    ("sampling B=32: head 1x1 conv", 32, 256, 256),
)

# (target, GFLOP of the work, seconds allowed, the workload prefix of the shapes
# that bound it), from the issues' targets and the FLOP counts in the README
# (forward + backward where training or optimising).
TARGETS = (
    ("WaveNet train step <= 150 ms (1 x 16000)", 39.6, 0.150, "WaveNet train"),
    ("Ulyanov recipe <= 110 s (339 evaluations of 84 GFLOP)", 339 * 84.0, 110.0, "Ulyanov style"),
    ("sampling B=32 >= 300,000 samples/s (0.83 MFLOP/sample)", 0.83e-3 * 300000, 1.0, "sampling B=32"),
)


def measure(repeats):
  """{workload: GFLOP/s} in this process (XLA_FLAGS already set)."""
  import jax  # imported here: XLA_FLAGS must be set first

  rates = {}
  for name, m, k, n in SHAPES:
    a = jax.random.normal(jax.random.key(0), (m, k))
    b = jax.random.normal(jax.random.key(1), (k, n))
    matmul = jax.jit(lambda a, b: a @ b)
    matmul(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
      tic = time.perf_counter()
      matmul(a, b).block_until_ready()
      best = min(best, time.perf_counter() - tic)
    rates[name] = 2.0 * m * k * n / best / 1e9
  return rates


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_matmul", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=5, help="timed runs per shape (best is kept)")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.repeats < 1:
    raise InputError(f"--repeats {args.repeats}: give at least 1")
  if args.worker:
    print(json.dumps(measure(args.repeats)))
    return

  results = {}
  for backend, flags in BACKENDS.items():
    env = dict(os.environ, XLA_FLAGS=flags)
    worker = subprocess.run([sys.executable, "-m", "benchmarks.bench_matmul", "--worker", "--repeats",
                             str(args.repeats)], env=env, capture_output=True, text=True)
    if worker.returncode:
      print(f"error: the {backend} backend ({flags or 'no flags'}) failed: "
            f"{(worker.stderr.strip().splitlines() or ['no output'])[-1]}", file=sys.stderr)
      sys.exit(2)
    results[backend] = json.loads(worker.stdout.strip().splitlines()[-1])

  print(f"| workload (m x k x n) | {' | '.join(BACKENDS)} |")
  print(f"|---|{'---|' * len(BACKENDS)}")
  for name, m, k, n in SHAPES:
    rates = " | ".join(f"{results[backend][name]:.0f}" for backend in BACKENDS)
    print(f"| {name} ({m} x {k} x {n}) | {rates} |")
  best = max(rate for rates in results.values() for rate in rates.values())
  print(f"\nGFLOP/s, float32, best of {args.repeats}; best anywhere: {best:.0f} GFLOP/s\n")
  print("| target | sustained GFLOP/s needed | best measured on its shapes | reachable here |")
  print("|---|---|---|---|")
  for target, gflop, seconds, workload in TARGETS:
    needed = gflop / seconds
    ceiling = max(rate for rates in results.values() for name, rate in rates.items() if name.startswith(workload))
    print(f"| {target} | {needed:.0f} | {ceiling:.0f} | {'yes' if needed <= ceiling else 'no'} |")


if __name__ == "__main__":
  cli.run(main)
