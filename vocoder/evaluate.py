"""Copy-synthesis evaluation of a vocoder: per-speaker voicing, pitch and spectral errors.

Three sets of utterances: validation sentences of the training speakers,
the held-out speakers' utterances, and engine variants that are in no split
(`corpora.voices.roster.UNSEEN_VARIANTS`, rendered on the fly). Each
utterance is resynthesised from its frame features alone (F0 integrated, no
phase from the recording) and scored against the original; WORLD analysis
and resynthesis (pyworld: Harvest, CheapTrick, D4C) is the DSP reference row.
"""

import numpy as np
import pyworld

from corpora.voices import render
from vocoder import metrics as metrics_lib

METRICS = ("vuv_error_pct", "gross_pitch_error_pct", "f0_rmse_cents", "log_spectral_distance_db")
UNSEEN_SENTENCE_SEED = 20261201  # sentences of the unseen variants (not the corpus's)


def world_resynthesis(audio, sample_rate):
  """[n] float32 audio analysed and resynthesised by WORLD (Harvest F0, CheapTrick, D4C)."""
  x = np.asarray(audio, np.float64)
  f0, times = pyworld.harvest(x, sample_rate, f0_floor=60.0, f0_ceil=500.0, frame_period=5.0)
  envelope = pyworld.cheaptrick(x, f0, times, sample_rate)
  aperiodicity = pyworld.d4c(x, f0, times, sample_rate)
  y = pyworld.synthesize(f0, envelope, aperiodicity, sample_rate, frame_period=5.0)
  return np.clip(y[:len(x)], -1.0, 1.0).astype(np.float32)


def score(reference, output, sample_rate):
  """The METRICS (and voiced shares, median F0) of one output against its reference."""
  scores = metrics_lib.pitch_errors(reference, output, sample_rate)
  scores["log_spectral_distance_db"] = metrics_lib.log_spectral_distance(reference, output, sample_rate)
  return scores


def unseen_utterances(per_speaker):
  """[(speaker name, gender, [n] float32 audio at 16 kHz)] of the unseen engine variants."""
  return [(voice.name, voice.gender, audio)
          for voice, audio in render.unseen_variant_clips(per_speaker, UNSEEN_SENTENCE_SEED)]


def summarise(rows):
  """Per-(set, speaker, system) means of METRICS over utterances: {key: {metric: mean}}.

  Args:
    rows: dicts with set, speaker, gender, system and the METRICS.
  """
  table = {}
  for row in rows:
    table.setdefault((row["set"], row["speaker"], row["gender"], row["system"]), []).append(row)
  return {key: {metric: float(np.nanmean([r[metric] for r in group])) if any(np.isfinite(r[metric]) for r in group)
                else float("nan") for metric in METRICS} | {"utterances": len(group)}
          for key, group in table.items()}


def markdown_table(summary):
  """The summary as a markdown table, one row per (set, speaker, system), plus per-set means."""
  header = ("| set | speaker | gender | system | utterances | V/UV error % | gross pitch error % | "
            "F0 RMSE (cents) | log-spectral distance (dB) |")
  lines = [header, "|" + "---|" * 9]
  fmt = lambda v: "-" if not np.isfinite(v) else f"{v:.1f}"
  for (set_name, speaker, gender, system), values in sorted(summary.items()):
    lines.append(f"| {set_name} | {speaker} | {gender} | {system} | {values['utterances']} | "
                 + " | ".join(fmt(values[m]) for m in METRICS) + " |")
  sets = sorted({(k[0], k[3]) for k in summary})
  for set_name, system in sets:
    group = [v for k, v in summary.items() if k[0] == set_name and k[3] == system]
    means = [float(np.nanmean([g[m] for g in group])) if any(np.isfinite(g[m]) for g in group) else float("nan")
             for m in METRICS]
    lines.append(f"| **{set_name}, mean over speakers** | | | {system} | {sum(g['utterances'] for g in group)} | "
                 + " | ".join(fmt(v) for v in means) + " |")
  return "\n".join(lines) + "\n"
