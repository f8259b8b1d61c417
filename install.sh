#!/usr/bin/env bash
# Installs everything electric-beats needs on Debian/Ubuntu with Python 3.11:
# the speech engines, sox and fluidsynth from apt, the pinned wheels from pip.
set -euo pipefail
APT_PACKAGES=(flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k
              espeak-ng sox libsndfile1 fluidsynth fluid-soundfont-gm)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q -r "$(dirname "$0")/requirements.txt"
python3 -m pip install -q --no-deps -e "$(dirname "$0")"
