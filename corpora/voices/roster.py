"""Who speaks in the `voices` corpus: one entry per distinct person.

Festival's `cmu_us_slt_arctic_hts` is the same person as flite's `slt`, and
festival's `kal_diphone` the same as flite's `kal16`, so each appears once
(as the flite voice). espeak-ng variants are formant-synthesis settings, not
recordings, but they differ in pitch, timbre and rhythm, so each counts as a
speaker. Median F0 below was measured at design time (pYIN, Hz).

Genders and engines are confounded: the only non-espeak female voice is
`slt`, so most female speakers are espeak-ng and most male ones are not.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Speaker:
  """One synthetic speaker.

  Attributes:
    name: label stored in the corpus, `<engine>_<voice>`.
    gender: "female" or "male".
    engine: "flite", "espeak-ng" or "festival".
    voice: the engine's voice id (flite `-voice`, espeak-ng `-v`, festival
      `voice_<id>` function).
  """

  name: str
  gender: str
  engine: str
  voice: str


def _flite(voice, gender):
  return Speaker(f"flite_{voice}", gender, "flite", voice)


def _espeak(variant, gender):
  return Speaker(f"espeak_{variant.lower()}", gender, "espeak-ng", f"en-us+{variant}")


def _festival(voice, gender):
  return Speaker(f"festival_{voice.removesuffix('_diphone')}", gender, "festival", voice)


# Median F0 a speaker of each gender must have, in Hz; the build fails outside.
F0_RANGE_HZ = {"female": (140.0, 320.0), "male": (60.0, 165.0)}

FLITE_SLT = _flite("slt", "female")  # ~174 Hz
FLITE_RMS = _flite("rms", "male")  # ~100 Hz
ESPEAK_F5 = _espeak("f5", "female")  # ~207 Hz
ESPEAK_M7 = _espeak("m7", "male")  # ~108 Hz

FULL_SPEAKERS = (
    FLITE_SLT,
    _espeak("f1", "female"),  # ~180 Hz
    _espeak("f2", "female"),  # ~199 Hz
    _espeak("f3", "female"),  # ~214 Hz
    _espeak("f4", "female"),  # ~181 Hz
    _espeak("Annie", "female"),  # ~240 Hz
    _espeak("Alicia", "female"),  # ~254 Hz
    FLITE_RMS,
    _flite("awb", "male"),  # ~130 Hz, Scottish English
    _flite("kal16", "male"),  # ~86 Hz
    _festival("ked_diphone", "male"),  # ~100 Hz
    _espeak("m1", "male"),  # ~95 Hz
    _espeak("m3", "male"),  # ~105 Hz
    _espeak("m8", "male"),  # ~87 Hz
)
FULL_HELDOUT = (ESPEAK_F5, ESPEAK_M7)

SMALL_SPEAKERS = (FLITE_SLT, FLITE_RMS)
SMALL_HELDOUT = (ESPEAK_F5, ESPEAK_M7)

# Engine variants in no split of any config: voices a vocoder or encoder has never heard, for
# evaluation only (espeak-ng variants, accents and languages' English not in the corpus, flite's
# 8 kHz diphone voice). Median F0 measured at design time (pYIN, Hz). espeak-ng ignores a variant
# after "en-gb" ("en-gb+m2" is plain "en-gb"), so only voices that render distinctly are listed.
UNSEEN_VARIANTS = (
    Speaker("espeak_m4", "male", "espeak-ng", "en-us+m4"),  # ~96 Hz
    Speaker("espeak_andy", "male", "espeak-ng", "en-us+Andy"),  # ~95 Hz
    Speaker("espeak_scotland", "male", "espeak-ng", "en-gb-scotland"),  # ~105 Hz
    Speaker("flite_kal", "male", "flite", "kal"),  # 8 kHz diphones, ~95 Hz
    Speaker("espeak_belinda", "female", "espeak-ng", "en-us+belinda"),  # ~226 Hz
    Speaker("espeak_anika", "female", "espeak-ng", "en-us+anika"),  # ~265 Hz
    Speaker("espeak_aunty", "female", "espeak-ng", "en-us+aunty"),  # ~174 Hz
)
