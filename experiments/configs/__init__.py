"""Experiment configs: one ml_collections ConfigDict per file, each with a `smoke` variant for tests.

A config file imports nothing heavy (no corpus is opened to size a model),
and its smoke variant is one dict of overrides applied in one place.
"""

import ml_collections

# Sizes the configs need from heavier modules, written out so that a config imports nothing but ml_collections;
# tests/test_configs.py checks each against its source.
VOICES_SPEAKERS = {"full": 16, "small": 4}  # corpora.voices.roster: training plus held-out speakers
FRAME_CHANNELS = 27  # vocoder.features.LOCAL_CHANNELS: log-F0, voicing, energy and dsp.frames.NUM_MELS log-mel bands
EXCITATION_CHANNELS = 3  # dsp.excitation.NUM_CHANNELS: the source at F0


def override_fields(config, values):
  """Sets, for each `name: value` of `values`, the one field of that name in `config`'s nested sections.

  A name that several sections share is given as a dotted path ("data.batch_size").

  Raises:
    ValueError: a name matches no field, or more than one (the override would be ambiguous).
  """
  values = dict(values)
  for path in [name for name in values if "." in name]:
    *sections, field = path.split(".")
    section = config
    for name in sections:
      section = section[name]
    if field not in section:
      raise ValueError(f"smoke override {path!r} names no config field")
    section[field] = values.pop(path)
  found = {name: [] for name in values}

  def visit(section):
    for field, value in section.items():
      if isinstance(value, ml_collections.ConfigDict):
        visit(value)
      elif field in found:
        found[field].append(section)

  for section in config.values():
    visit(section)
  for name, sections in found.items():
    if len(sections) != 1:
      raise ValueError(f"smoke override {name!r} matches {len(sections)} config fields; it must match exactly one")
    sections[0][name] = values[name]
