"""Builds the C++ kernel library: `python -m kernels` (install.sh runs it). One line and exit 2 if g++ fails."""

import sys

import kernels

if __name__ == "__main__":
  try:
    print(f"kernels: {kernels.build()}")
  except RuntimeError as error:
    print(f"kernels: could not build {kernels.SOURCE} ({error}): install g++ (apt-get install g++), then rerun",
          file=sys.stderr)
    sys.exit(2)
