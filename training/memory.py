"""The memory a compiled program needs, checked against what the machine has before the program runs.

XLA's own accounting of a compiled executable (arguments, outputs, scratch)
is the estimate, so a request too large for the machine (a crop of ten
million samples, a thousand sampled streams) is one line naming the limit,
not an allocation failure minutes later.
"""

import os

import jax

from common.errors import InputError

GIB = 2 ** 30


def available_bytes():
  """Bytes free for a program on the default device: an accelerator's limit less its use, else the host's
  MemAvailable (Linux) or its physical memory."""
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  try:
    with open("/proc/meminfo") as meminfo:
      for line in meminfo:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _size(num_bytes):
  """'1.5 GiB' or '340 MiB'."""
  return f"{num_bytes / GIB:.1f} GiB" if num_bytes >= GIB else f"{num_bytes / 2 ** 20:.0f} MiB"


def needed_bytes(compiled):
  """Peak bytes of a `jax.stages.Compiled`: its arguments, outputs not aliased to them, and scratch; None when
  the backend does not say."""
  stats = compiled.memory_analysis()
  if stats is None:
    return None
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
          + stats.temp_size_in_bytes)


def compile_within_memory(jitted, args, what, advice, host_bytes=0):
  """Compiles `jitted` for `args` (arrays or ShapeDtypeStructs) and returns the executable if it fits.

  A later call of `jitted` on arrays of the same shapes reuses the executable (JAX caches it).

  Args:
    host_bytes: bytes the caller will also hold outside the program (e.g.
      the numpy arrays it builds for the arguments), added to XLA's count.

  Raises:
    InputError: `what` needs more than the device has free; the message gives both sizes and `advice`.
  """
  compiled = jitted.lower(*args).compile()
  need, have = needed_bytes(compiled), available_bytes()
  if need is not None and need + host_bytes > have:
    raise InputError(f"{what} needs about {_size(need + host_bytes)} but {_size(have)} is free on "
                     f"{jax.devices()[0].platform}; {advice}")
  return compiled
