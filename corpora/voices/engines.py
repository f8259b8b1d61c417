"""The command-line speech engines: installation checks and raw synthesis.

Each engine writes 16-bit mono WAV files at its own rate (flite and festival's
diphone voices 16 kHz, espeak-ng 22.05 kHz); `render.py` converts them.
"""

import os
import re
import shutil
import subprocess

from common.errors import InputError

_APT_PACKAGES = {"flite": "flite", "espeak-ng": "espeak-ng", "festival": "festival"}
_FESTIVAL_VOICE_PACKAGES = {
    "ked_diphone": "festvox-kdlpc16k",
    "kal_diphone": "festvox-kallpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}


def _output(command):
  return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _installed_voices(engine):
  """The voice ids `engine` offers, parsed from its own listing."""
  if engine == "flite":
    return set(_output(["flite", "-lv"]).split(":", 1)[1].split())
  if engine == "espeak-ng":
    languages = {line.split()[1] for line in _output(["espeak-ng", "--voices"]).splitlines()[1:]}
    variants = set(re.findall(r"!v/(\S+)", _output(["espeak-ng", "--voices=variant"])))
    return {f"{language}+{variant}" for language in languages for variant in variants}
  return set(_output(["festival", "--batch", "(print (voice.list))"]).strip("()\n").split())


def _install_hint(engine, voice=None):
  packages = [_APT_PACKAGES[engine]]
  if engine == "festival" and voice in _FESTIVAL_VOICE_PACKAGES:
    packages.append(_FESTIVAL_VOICE_PACKAGES[voice])
  return f"install it with: sudo apt-get install {' '.join(packages)}"


def check_installed(speakers):
  """Fails loudly unless every speaker's engine and voice exists.

  espeak-ng silently falls back to its default voice on an unknown variant,
  so every voice id is looked up in the engine's own voice list first.

  Args:
    speakers: iterable of `roster.Speaker`.

  Raises:
    InputError: an engine is not installed or lacks a voice; the message
      names the apt packages to install.
  """
  voices_by_engine = {}
  for speaker in speakers:
    voices_by_engine.setdefault(speaker.engine, set()).add(speaker.voice)
  for engine, voices in sorted(voices_by_engine.items()):
    if shutil.which(engine) is None:
      raise InputError(f"speech engine {engine} is not installed; {_install_hint(engine, min(voices))}")
    missing = sorted(voices - _installed_voices(engine))
    if missing:
      raise InputError(f"{engine} has no voice {missing[0]}; {_install_hint(engine, missing[0])}")


def _festival_string(text):
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize(speaker, texts, directory):
  """Speaks each text with `speaker`'s voice into a WAV file in `directory`.

  Args:
    speaker: a `roster.Speaker` whose voice passed `check_installed`.
    texts: list of str, plain English sentences.
    directory: an existing, empty scratch directory.

  Returns:
    List of WAV paths, one per text, 16-bit mono at the engine's rate.
  """
  paths = [os.path.join(directory, f"{index:05d}.wav") for index in range(len(texts))]
  if speaker.engine == "festival":
    script = os.path.join(directory, "synthesize.scm")
    with open(script, "w") as handle:
      handle.write(f"(voice_{speaker.voice})\n")
      for text, path in zip(texts, paths):
        handle.write(f"(utt.save.wave (SynthText {_festival_string(text)}) {_festival_string(path)} 'riff)\n")
    _output(["festival", "--batch", script])
  for text, path in zip(texts, paths):
    if speaker.engine == "flite":
      _output(["flite", "-voice", speaker.voice, "-t", text, "-o", path])
    elif speaker.engine == "espeak-ng":
      _output(["espeak-ng", "-v", speaker.voice, "-w", path, text])
    if not os.path.exists(path):
      raise RuntimeError(f"{speaker.engine} wrote no audio for {speaker.name}: {text!r}")
  return paths
