#!/usr/bin/env bash
# Installs electric-beats on Debian or Ubuntu: the speech engines, sox and
# fluidsynth from apt, then a virtual environment .venv (python3 -m venv)
# holding the pinned wheels and the project itself. Works with a distribution's
# python3 (3.11, 3.12) and with a pyenv one; PEP 668 does not apply to a venv.
#
#   bash install.sh                      # then: .venv/bin/python -m experiments.sample_garble ...
#   bash install.sh --tests              # also Chromium, which the slow tier's listening-page test drives
#   PYTHON=/usr/bin/python3.12 bash install.sh
#
# Exit status 2, with one line saying what is missing, when apt, python3, its
# venv module or the package registries cannot be reached.
set -uo pipefail
cd "$(dirname "$0")"
fail() { echo "install.sh: $*" >&2; exit 2; }

APT_PACKAGES=(flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k
              espeak-ng sox libsndfile1 fluidsynth fluid-soundfont-gm)
for argument in "$@"; do
  case "$argument" in
    --tests) APT_PACKAGES+=(chromium) ;;
    *) fail "unknown option $argument: the one option is --tests (also install Chromium for the test suite)" ;;
  esac
done
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    fail "no apt-get on this machine: install ${missing[*]} with your package manager, then rerun"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: run as root to install ${missing[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq >/dev/null 2>&1 ||
    fail "apt-get update failed (offline?): connect to a Debian/Ubuntu mirror, or install ${missing[*]} by hand"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    fail "apt-get install ${missing[*]} failed: check the mirror, or install them by hand"
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || fail "no $PYTHON: apt-get install python3 python3-venv"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "$("$PYTHON" -V 2>&1) is too old, 3.11 or newer is needed: apt-get install python3.11 python3.11-venv, then PYTHON=python3.11 bash install.sh"
if [ ! -x .venv/bin/python ]; then
  version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    fail "$PYTHON has no venv module: apt-get install python${version}-venv"
  "$PYTHON" -m venv .venv >/dev/null || { rm -rf .venv; fail "python3 -m venv .venv failed: apt-get install python${version}-venv"; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt ||
  fail "pip could not install requirements.txt (offline, or no wheel for $(.venv/bin/python -V)): connect to PyPI and rerun"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . >/dev/null ||
  fail "pip could not install the project itself into .venv"
.venv/bin/python -m kernels >/dev/null ||
  fail "g++ could not build the C++ kernels (kernels/*.cc): apt-get install g++, then rerun"
# librosa compiles its numba kernels (pYIN, overlap-add) on first use and caches them beside its
# sources; several processes filling that cache at once (pytest -n auto) can crash one of them.
# Compile them here, once.
.venv/bin/python -c 'import librosa, numpy as np
tone = np.sin(2 * np.pi * 150 * np.arange(16000) / 16000).astype(np.float32)
librosa.pyin(tone, fmin=50.0, fmax=500.0, sr=16000)
librosa.istft(librosa.stft(tone))' ||
  fail "librosa could not compile its numba kernels in .venv: rerun; if it fails again, rm -rf .venv and rerun"
echo "install.sh: ready; run commands with .venv/bin/python (e.g. .venv/bin/python -m pytest)"
