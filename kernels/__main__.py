"""Builds the C++ kernels library beside its source (install.sh runs this).

    python -m kernels

Prints the library's path; if g++ is missing or fails, one line and exit 2.
"""

import argparse
import os

import kernels
from common import cli
from common.errors import InputError


def main(argv):
  cli.ArgumentParser(prog="python -m kernels", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
  try:
    print(f"kernels: {kernels.build()}")
  except RuntimeError as error:
    raise InputError(f"could not build the kernels in {os.path.dirname(kernels.SOURCES[0])} ({error}): "
                     "install g++ (apt-get install g++), then rerun") from None


if __name__ == "__main__":
  cli.run(main)
