"""The tag vocabulary of the `music` corpus: what a listener can hear in a rendered clip.

Tags, in this order (`tag_names(composers)`):
  instrument families  the General MIDI families of the programs played,
  solo / ensemble      one part sounding, or several,
  slow / fast          note onsets per second below SLOW_ONSETS_PER_S, or above
                       FAST_ONSETS_PER_S (in between: neither),
  low / high           median MIDI pitch of the rendered notes below LOW_PITCH,
                       or above HIGH_PITCH (in between: neither),
  composers            the collection the score comes from.
"""

import numpy as np

# General MIDI programs (0-based) per family; a part gets one of its family's programs.
FAMILIES = (
    ("piano", (0, 1, 2, 4, 5)),
    ("chromatic_percussion", (8, 9, 10, 11, 12, 13)),
    ("organ", (16, 17, 18, 19, 20)),
    ("guitar", (24, 25, 26, 27)),
    ("strings", (40, 41, 42, 48, 49)),
    ("brass", (56, 57, 58, 60, 61)),
    ("reed", (64, 65, 66, 68, 70, 71)),
    ("pipe", (72, 73, 74, 75, 79)),
)
FAMILY_NAMES = tuple(name for name, _ in FAMILIES)
TEXTURE_NAMES = ("solo", "ensemble")
TEMPO_NAMES = ("slow", "fast")
REGISTER_NAMES = ("low", "high")
SLOW_ONSETS_PER_S = 1.5
FAST_ONSETS_PER_S = 3.0
LOW_PITCH = 58  # B-flat 3
HIGH_PITCH = 74  # D5


def tag_names(composers):
  """All tag names for a corpus with these `composers` (tuple of str), in tag order."""
  return FAMILY_NAMES + TEXTURE_NAMES + TEMPO_NAMES + REGISTER_NAMES + tuple(composers)


def multi_hot(composers, families, n_parts, onsets_per_s, median_pitch, composer):
  """The tags of one rendered clip.

  Args:
    composers: the corpus's composer names (tag order).
    families: names of the instrument families played.
    n_parts: parts that sound in the clip (>= 1).
    onsets_per_s: distinct note-onset times per second.
    median_pitch: median MIDI pitch of the notes (float).
    composer: this clip's composer, one of `composers`.

  Returns:
    [len(tag_names(composers))] uint8 multi-hot vector.
  """
  names = tag_names(composers)
  present = set(families)
  present.add("solo" if n_parts == 1 else "ensemble")
  if onsets_per_s < SLOW_ONSETS_PER_S:
    present.add("slow")
  elif onsets_per_s > FAST_ONSETS_PER_S:
    present.add("fast")
  if median_pitch < LOW_PITCH:
    present.add("low")
  elif median_pitch > HIGH_PITCH:
    present.add("high")
  present.add(composer)
  return np.array([name in present for name in names], dtype=np.uint8)
