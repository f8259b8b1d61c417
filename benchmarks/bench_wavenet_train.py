"""Training-step throughput of the standard WaveNet (2 x 10 layers, 32/32/256, 256 classes), and its profile.

    python -m benchmarks.bench_wavenet_train [--batches 1 2 4] [--samples 16000] [--steps 10] [--profile 12] \
        [--no-config-batches] [--xla-option NAME=VALUE ...] [--without-kernels] [--gradient-ablation]

Prints one table: compile time, step time and predicted samples per second per
batch size, for a full AdamW step (forward, backward, update) on random codes.
A batch of several rows is timed whole and in microbatches of one row
(`training.state.make_train_step`: the same loss and gradient, the rows' gradients
taken one after another). Then the training configs' own steps, whole and with
their `train.microbatches`: experiments/configs/wavenet_voices.py (this model,
4 windows of 4,000 predicted samples) and experiments/configs/vocoder_voices.py
(its 10-layer vocoder with frame features and excitation, 4 x 2,000). With
--profile N, each batch's steps also run under `jax.profiler` and the N ops
that took longest are printed with their output shape and the JAX operation
they came from, then the op time by kind of XLA kernel (op time is summed over
XLA's threads, so it can exceed the step's wall time). With --xla-option, each
step is also compiled with those XLA debug options and the two programs run
alternately, step by step, in one process: a comparison this machine's drift
(20% from hour to hour) touches far less than two runs of the command. With
--without-kernels, the same for the step traced without the C++ kernels
(`kernels.disabled()`: XLA's own residual layers, products and weight
gradients, and its head and likelihood); with --gradient-ablation, that XLA
step without the layers' weight gradients and without the head's: their cost,
which the profile cannot show, since XLA's matmuls run on worker threads and
its trace holds only their launch. The last column counts the page faults per
step (`kernels.retain_freed_memory` keeps them near 0; with
ELECTRIC_BEATS_SYSTEM_MALLOC=1, glibc's defaults, each step faults its
temporaries in anew; programs that alternate can fragment the one heap for
each other, as the whole 4 x 16,000 step does: docs/wavenet.md).
"""

import argparse
import collections
import contextlib
import glob
import gzip
import json
import re
import resource
import tempfile
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import kernels
from common import cli
from common.errors import InputError
from experiments.configs import vocoder_voices, wavenet_voices
from training import state as state_lib
from vocoder import train as vocoder_train
from wavenet import loss as loss_lib
from wavenet.model import WaveNet, build_model

STANDARD = dict(num_stacks=2, layers_per_stack=10, kernel_size=2, residual_channels=32, gate_channels=32,
                skip_channels=256, head_channels=256, num_classes=256, global_categories=(("speaker", 16),))



def _op_times(trace_folder, steps):
  """{XLA op name: ms per step} from the perfetto trace `jax.profiler.trace` wrote into `trace_folder`."""
  (path,) = glob.glob(f"{trace_folder}/**/*.trace.json.gz", recursive=True)
  with gzip.open(path) as file:
    events = json.load(file)["traceEvents"]
  times = collections.Counter()
  for event in events:
    if event.get("ph") == "X" and not event["name"].startswith(("$", "ThunkExecutor", "SlinkyThreadPool", "PjitFunction")):
      times[event["name"]] += event["dur"] / 1000 / steps
  return times


def _describe(hlo_text, name):
  """`output shape  jax operation` of op `name` in a compiled module's HLO text."""
  found = re.search(rf"%{re.escape(name)} = (\S+) [^\n]*?op_name=\"([^\"]+)\"", hlo_text)
  return f"{found.group(1)}  {found.group(2).removeprefix('jit(step)/')}" if found else ""


def print_profile(times, hlo_text, top):
  """The `top` longest ops and the op time by kind of kernel (the name without its number)."""
  print(f"    {sum(times.values()):.0f} ms of op time per step; longest ops:")
  for name, ms in times.most_common(top):
    print(f"    {ms:8.1f} ms  {name:30s} {_describe(hlo_text, name)}")
  kinds = collections.Counter()
  for name, ms in times.items():
    kinds[re.sub(r"[._]?\d+$", "", name)] += ms
  print("    by kind (ms): " + ", ".join(f"{kind} {ms:.0f}" for kind, ms in kinds.most_common(8)))


def standard_task(batch_size, samples):
  """(model, loss_fn, batch) of the standard WaveNet on random codes."""
  model = WaveNet(**STANDARD)
  rng = np.random.default_rng(0)
  batch = {"codes": jnp.asarray(rng.integers(0, 256, (batch_size, model.receptive_field + samples)), jnp.int32),
           "speaker": jnp.zeros((batch_size,), jnp.int32)}
  return model, loss_lib.make_loss_fn(model, ("speaker",)), batch


def vocoder_task(batch_size, samples):
  """(model, loss_fn, batch) of the vocoder config's WaveNet on random codes, frame vectors and excitation."""
  config = vocoder_voices.get_config()
  model = build_model(config.model)
  rng = np.random.default_rng(0)
  length = model.receptive_field + samples
  codes = jnp.asarray(rng.integers(0, 256, (batch_size, length)), jnp.int32)
  batch = {"codes": codes, "inputs": codes, "speaker": jnp.zeros((batch_size,), jnp.int32),
           "local": jnp.asarray(rng.normal(size=(batch_size, length - 1, config.model.local_channels)), jnp.float32),
           "excitation": jnp.asarray(rng.normal(size=(batch_size, length - 1, config.model.excitation_channels)),
                                     jnp.float32)}
  return model, vocoder_train.make_loss_fn(model), batch


class Variant(NamedTuple):
  """A program timed beside the default step: another compilation, tracing or set of gradients."""
  label: str
  compiler_options: dict = {}  # XLA debug options for its compilation
  without_kernels: bool = False  # traced under kernels.disabled(): XLA's own products instead of the C++ kernels
  frozen: tuple = ()  # parameters whose gradient is left out (stop_gradient): the difference is what it costs


# --gradient-ablation: under XLA alone, the weight gradients whose cost its trace cannot show (its matmuls run on
# worker threads). The fused kernels compute every gradient whether it is used or not, and their calls are in the
# trace.
ABLATIONS = (Variant("XLA only, no layer weight gradients", without_kernels=True,
                     frozen=("dilated_kernel", "residual_kernel")),
             Variant("XLA only, no head weight gradients", without_kernels=True,
                     frozen=("skip_kernel", "hidden_kernel", "output_kernel")))


def _frozen(loss_fn, names):
  """`loss_fn` with the parameters `names` held by `stop_gradient`: their gradient is zero and never computed."""
  def held(params, *args, **kwargs):
    inner = {name: jax.lax.stop_gradient(value) if name in names else value
             for name, value in params["params"].items()}
    return loss_fn({**params, "params": inner}, *args, **kwargs)
  return held


def measure(task, microbatches, steps, profile=0, variants=()):
  """`steps` AdamW steps on `task`: ([(label, compile s, step s, predicted samples/s, page faults per step)],
  profile or None).

  One row for the default program and one for each `Variant`; the programs run alternately, step by step,
  so that the machine's drift from one minute to the next falls on all alike.
  """
  model, loss_fn, batch = task
  optimizer = state_lib.make_optimizer(1e-3, 1000, 10, 0.0, 1.0)
  conditioning = {name: batch[name][:1] for name in ("local", "excitation") if name in batch}
  params = model.init(jax.random.key(0), batch["codes"][:1, :-1], **conditioning)
  state = state_lib.create_state(params, optimizer, 0)
  key = jax.random.key(0)

  def compile_variant(variant):
    step = state_lib.make_train_step(_frozen(loss_fn, variant.frozen) if variant.frozen else loss_fn,
                                     optimizer, microbatches)
    with kernels.disabled() if variant.without_kernels else contextlib.nullcontext():
      lowered = jax.jit(step, donate_argnums=(0,)).lower(state, batch, key)
    return lowered.compile(compiler_options=variant.compiler_options or None)

  compilations = [Variant("default"), *variants]
  programs, compile_times = [], []
  for variant in compilations:
    tic = time.perf_counter()
    programs.append(compile_variant(variant))
    compile_times.append(time.perf_counter() - tic)
  for program in programs:  # one warm-up step each
    state, metrics = program(state, batch, key)
    jax.block_until_ready(metrics)
  times, faults = [[] for _ in programs], [[] for _ in programs]
  for _ in range(steps):
    for program, timed, faulted in zip(programs, times, faults):
      faults_before, tic = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
      state, metrics = program(state, batch, key)
      jax.block_until_ready(metrics)
      timed.append(time.perf_counter() - tic)
      faulted.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
  predicted = batch["codes"].shape[0] * (batch["codes"].shape[1] - model.receptive_field)
  rows = [(variant.label, compile_s, float(np.median(timed)), predicted / float(np.median(timed)),
           int(np.median(faulted)))
          for variant, compile_s, timed, faulted in zip(compilations, compile_times, times, faults)]
  if profile:
    with tempfile.TemporaryDirectory(prefix="bench_wavenet_train_") as folder:
      with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(steps):
          state, metrics = programs[0](state, batch, key)
          jax.block_until_ready(metrics)
      return rows, (_op_times(folder, steps), programs[0].as_text())
  return rows, None


def _xla_options(pairs):
  """{name: value} of --xla-option NAME=VALUE flags (names with or without their leading --)."""
  options = {}
  for pair in pairs:
    name, equals, value = pair.partition("=")
    if not equals or not name.strip("-"):
      raise InputError(f"--xla-option {pair}: give NAME=VALUE, e.g. xla_cpu_experimental_ynn_fusion_type=")
    options[name.strip("-")] = value
  try:  # Refused here, in one line, rather than after the first rows.
    jax.jit(lambda x: x + 1).lower(1.0).compile(compiler_options=options)
  except jax.errors.JaxRuntimeError as error:
    raise InputError(f"--xla-option: XLA refuses {options} ({str(error).splitlines()[0]})") from None
  return options


def main(argv):
  parser = cli.ArgumentParser(prog="python -m benchmarks.bench_wavenet_train", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4], help="batch sizes to time")
  parser.add_argument("--samples", type=int, default=16000, help="predicted samples per example")
  parser.add_argument("--steps", type=int, default=10, help="timed steps per batch size (median reported)")
  parser.add_argument("--profile", type=int, default=0, help="also profile each batch and print its N longest ops")
  parser.add_argument("--no-config-batches", action="store_true", help="leave out the training configs' rows")
  parser.add_argument("--xla-option", action="append", default=[], metavar="NAME=VALUE",
                      help="also compile each step with this XLA debug option (repeatable) and time both programs "
                      "alternately, e.g. xla_cpu_experimental_ynn_fusion_type= (empty: no YNNPACK fusions)")
  parser.add_argument("--without-kernels", action="store_true",
                      help="also time each step without the C++ kernels (XLA's own residual layers, weight "
                      "gradients, head and likelihood), alternately in one process")
  parser.add_argument("--gradient-ablation", action="store_true",
                      help="also time each step under XLA alone without the layers' and without the head's weight "
                      "gradients, alternately in one process: what computing them costs there (against --without-kernels' row)")
  args = parser.parse_args(argv)
  xla_options = _xla_options(args.xla_option)
  variants = ([Variant(" ".join(f"{name}={value}" for name, value in xla_options.items()), xla_options)]
              if xla_options else [])
  variants += [Variant("XLA only", without_kernels=True)] if args.without_kernels else []
  variants += list(ABLATIONS) if args.gradient_ablation else []
  if min(args.batches) < 1 or args.samples < 1 or args.steps < 1 or args.profile < 0:
    raise InputError("--batches, --samples and --steps must be at least 1, --profile at least 0")
  print(f"WaveNet 2x10 layers, residual 32, gate 32+32, skip 256, 256 classes; {jax.devices()[0].platform}, "
        f"{jax.device_count()} device(s)")
  print(f"{'batch':>28} | {'microbatches':>12} | {'variant':>11} | {'compile s':>9} | {'step ms':>8} | "
        f"{'samples/s':>10} | {'page faults':>11}")
  rows = [(f"{size} x {args.samples}", standard_task, size, args.samples, groups)
          for size in args.batches for groups in sorted({1, size})]
  if not args.no_config_batches:
    for name, make_task, config in (("voices", standard_task, wavenet_voices.get_config()),
                                    ("vocoder", vocoder_task, vocoder_voices.get_config())):
      size, crop = config.data.batch_size, config.data.crop
      rows += [(f"{size} x {crop} ({name} config)", make_task, size, crop, groups)
               for groups in sorted({1, config.train.microbatches})]
  for label, make_task, size, samples, groups in rows:
    timed, profiled = measure(make_task(size, samples), groups, args.steps, args.profile, variants)
    for variant, compile_s, step_s, rate, faults in timed:
      print(f"{label:>28} | {groups:12d} | {variant:>11} | {compile_s:9.1f} | {1000 * step_s:8.1f} | {rate:10.0f} | "
            f"{faults:11d}", flush=True)
    if profiled:
      print_profile(*profiled, args.profile)

if __name__ == "__main__":
  cli.run(main)
