"""Write a static listening page: each result a user can hear, with its spectrogram, from the shipped models.

examples:
  python -m experiments.listening_page --out docs/samples
  python -m experiments.listening_page --seconds 1 --num 1 --out out/page
  python -m experiments.listening_page --tagger runs/music_raw --tag guitar --out out/page

Runs the shipped models (no training, no corpus): garble of both routes,
copy synthesis of voices no model heard (engine variants in no split,
rendered now: original beside vocoded), a latent path from one of them to
another, spectrogram style transfer and coordinate-descent style on WaveNet
activations of the same two clips, and, with --tagger and --tag, tagger
fooling. Each row plays its WAV, shows its spectrogram and states the command
behind it and what was measured (median F0, voiced share, V/UV error, losses).
The page is plain HTML with <audio> elements and one small stylesheet; it
works offline from the file system. It is built in a temporary folder beside
--out and renamed into place when complete; an --out holding an earlier page
is replaced, any other existing folder is refused.
"""

import argparse
import html
import json
import os
import re
import shutil
import tempfile

import jax
import numpy as np
from tqdm import tqdm

import dsp
from common import cli
from common.errors import InputError
from corpora.schema import SAMPLE_RATE
from corpora.voices import render
from experiments import interpolate, sample_garble, spectrogram_style, tagger_fooling, wavenet_style
from vocoder import evaluate as vocoder_evaluate
from vocoder import synthesis

PAGE_SENTENCE_SEED = 5  # sentences of the page's unseen-voice clips (not the corpus's, not the evaluations')
STYLESHEET = """body { font-family: sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.4em; text-align: left; vertical-align: middle; }
img { width: 24em; display: block; }
code { background: #f4f4f4; padding: 0.1em 0.3em; font-size: 0.9em; }
"""


def _f0_text(f0):
  return "unvoiced" if f0 is None or not np.isfinite(f0) else f"{f0:.0f} Hz"


def _row(label, wav, numbers):
  """One table row: label, player, the spectrogram PNG beside the WAV, numbers. Paths relative to the page."""
  png = os.path.splitext(wav)[0] + ".png"
  return (f"<tr><td>{html.escape(label)}</td><td><audio controls preload=\"none\" src=\"{html.escape(wav)}\">"
          f"</audio></td><td><img src=\"{html.escape(png)}\" alt=\"spectrogram of {html.escape(label)}\"></td>"
          f"<td>{html.escape(numbers)}</td></tr>")


def _section(title, command, rows, note=""):
  body = "".join(rows)
  note = f"<p>{html.escape(note)}</p>" if note else ""
  return (f"<h2>{html.escape(title)}</h2><p><code>{html.escape(command)}</code></p>{note}"
          f"<table><tr><th>clip</th><th>listen</th><th>spectrogram</th><th>measured</th></tr>{body}</table>")


def _read_json(path):
  with open(path) as file:
    return json.load(file)


def garble_sections(page, seconds, num):
  """Garble of the frames route (num per gender) and of the direct route (one per gender)."""
  sections = []
  for mode, count in (("frames", num), ("direct", 1)):
    folder = f"garble_{mode}"
    flags = ["--mode", mode, "--gender", "both", "--num", str(count), "--seconds", f"{seconds:g}", "--seed", "0"]
    sample_garble.main(flags + ["--out", os.path.join(page, folder)])
    rows = [_row(f"{s['gender']} {s['file'][:-4].rsplit('_', 1)[1]}", f"{folder}/{s['file']}",
                 f"median F0 {_f0_text(s['median_f0_hz'])}; voiced in "
                 f"{100 * (s['voiced_share_of_active'] or 0):.0f}% of active frames")
            for s in _read_json(os.path.join(page, folder, "summary.json"))["samples"]]
    title = ("Garble: frame prior + vocoder (the default route)" if mode == "frames"
             else "Garble: the sample-level WaveNet (direct route)")
    sections.append(_section(title, "python -m experiments.sample_garble " + " ".join(flags), rows))
  return sections


def unseen_voices(page, seconds):
  """One male and one female clip of engine variants in no split: {gender: (voice name, relative WAV path)}."""
  clips = render.unseen_variant_clips(1, PAGE_SENTENCE_SEED)
  chosen = {}
  for voice, audio in clips:
    if voice.gender not in chosen:
      audio = audio[:int(seconds * SAMPLE_RATE)]
      path = f"inputs/{voice.name}.wav"
      os.makedirs(os.path.join(page, "inputs"), exist_ok=True)
      dsp.save_audio(os.path.join(page, path), audio, SAMPLE_RATE)
      dsp.save_spectrogram_png(os.path.join(page, path[:-4] + ".png"), audio, SAMPLE_RATE, f"{voice.name}")
      chosen[voice.gender] = (voice.name, path)
  return chosen


def copy_synthesis_section(page, voices):
  """Each unseen voice's recording beside the shipped vocoder's copy synthesis of it."""
  model, params, _ = synthesis.load_vocoder(synthesis.SHIPPED_CHECKPOINT)
  rows = []
  for gender, (name, path) in sorted(voices.items()):
    audio, features = synthesis.analyse_recording(os.path.join(page, path), SAMPLE_RATE)
    vocoded = synthesis.vocode(model, params, [features], len(audio), jax.random.key(0), SAMPLE_RATE)[0]
    out = f"copy_synthesis/{name}_vocoded.wav"
    os.makedirs(os.path.join(page, "copy_synthesis"), exist_ok=True)
    dsp.save_audio(os.path.join(page, out), vocoded, SAMPLE_RATE)
    dsp.save_spectrogram_png(os.path.join(page, out[:-4] + ".png"), vocoded, SAMPLE_RATE, f"{name}: vocoded")
    scores = vocoder_evaluate.score(audio, vocoded, SAMPLE_RATE)
    rows.append(_row(f"{name} ({gender}), original", path, f"median F0 {_f0_text(scores['reference_median_f0'])}"))
    rows.append(_row(f"{name} ({gender}), vocoded", out,
                     f"median F0 {_f0_text(scores['output_median_f0'])}; V/UV error {scores['vuv_error_pct']:.1f}%; "
                     f"gross pitch error {scores['gross_pitch_error_pct']:.1f}%; log-spectral distance "
                     f"{scores['log_spectral_distance_db']:.1f} dB"))
  return _section("Copy synthesis of voices no model heard", "python -m experiments.vocode --input X.wav --out Y.wav",
                  rows, "Engine variants in no corpus split, rendered by the speech engines now.")


def interpolation_section(page, voices, seconds, steps):
  """The frame-rate VLAE's path from the male clip to the female one, every step playable, and its F0 figure."""
  (male, a), (female, b) = voices["male"], voices["female"]
  flags = ["--steps", str(steps), "--seconds", f"{seconds:g}"]
  interpolate.main(["--a", os.path.join(page, a), "--b", os.path.join(page, b), *flags,
                    "--out", os.path.join(page, "interpolation")])
  path = _read_json(os.path.join(page, "interpolation", "path.json"))
  rows = [_row(f"step {step} of {steps - 1}", f"interpolation/step_{step:02d}.wav",
               f"median F0 {_f0_text(f0)}; voiced {100 * voiced:.0f}%")
          for step, (f0, voiced) in enumerate(zip(path["median_f0_hz"], path["voiced_share"]))]
  spearman = path["spearman_f0_vs_step"]
  figure = '<p><img src="interpolation/f0_path.png" alt="median F0 and spectral centroid along the path"></p>'
  return _section(f"Latent interpolation: {male} to {female}",
                  f"python -m experiments.interpolate --a {male}.wav --b {female}.wav " + " ".join(flags), rows,
                  f"Spearman correlation of median F0 with the step: "
                  f"{'-' if spearman is None else f'{spearman:.2f}'}.") + figure


def style_sections(page, voices, seconds):
  """Spectrogram Gram style, and coordinate-descent WaveNet style of a quarter of `seconds` (it is slow; at
  least 0.25 s), male content, female style."""
  (male, a), (female, b) = voices["male"], voices["female"]
  content, style = os.path.join(page, a), os.path.join(page, b)
  os.makedirs(os.path.join(page, "style"), exist_ok=True)
  spectrogram_flags = ["--iterations", "100", "--griffin-lim-iterations", "100", "--filters", "1024",
                       "--sample-rate", str(SAMPLE_RATE)]
  spectrogram_style.main(["--content", content, "--style", style, "--out", os.path.join(page, "style",
                                                                                      "spectrogram.wav"),
                          *spectrogram_flags])
  losses = _read_json(os.path.join(page, "style", "spectrogram.json"))["losses"]
  rows = [_row(f"content: {male}", a, ""), _row(f"style: {female}", b, ""),
          _row("result", "style/spectrogram.wav",
               f"content loss {losses['content']:.3g}, style loss {losses['style']:.3g}")]
  sections = [_section("Spectrogram Gram-matrix style transfer",
                       "python -m experiments.spectrogram_style --content C.wav --style S.wav --out OUT.wav "
                       + " ".join(spectrogram_flags), rows)]
  wavenet_seconds = max(seconds / 4, 0.25)  # at least the WaveNet's receptive field (2,047 samples)
  wavenet_flags = ["--method", "coordinate", "--seconds", f"{wavenet_seconds:g}", "--steps", "10"]
  wavenet_style.main(["--content", content, "--style", style, "--out", os.path.join(page, "style", "wavenet.wav"),
                      *wavenet_flags])
  report = _read_json(os.path.join(page, "style", "wavenet.json"))
  result, start = report["methods"]["coordinate"], report["start"]
  rows = [_row(f"result ({wavenet_seconds:g} s)", "style/wavenet.wav",
               f"content loss {result['content']:.3g}, style loss {result['style']:.3g} (from the content clip: "
               f"{start['content']:.3g}, {start['style']:.3g})")]
  sections.append(_section("Style on WaveNet activations, decoded by coordinate descent",
                           "python -m experiments.wavenet_style --content C.wav --style S.wav --out OUT.wav "
                           + " ".join(wavenet_flags), rows))
  return sections


def fooling_section(page, voices, tagger, tag):
  """Both clips pushed towards `tag` by the tagger at `tagger`, before and after."""
  inputs = [os.path.join(page, path) for _, path in sorted(voices.values())]
  flags = ["--tag", tag, "--seconds", "2"]
  tagger_fooling.main(["--workdir", tagger, "--input", *inputs, *flags, "--out", os.path.join(page, "fooling")])
  rows = []
  for number, clip in enumerate(_read_json(os.path.join(page, "fooling", "fooling.json"))["clips"]):
    for suffix, key in (("original", "probability_before"), ("fooled", "probability_after")):
      rows.append(_row(f"{os.path.basename(clip['clip'])}, {suffix}", f"fooling/clip{number}_{suffix}.wav",
                       f"p({tag}) {clip[key]:.3f}" + (f"; SNR {clip['snr_db']:.1f} dB" if suffix == "fooled" else "")))
  return _section(f"Tagger fooling: towards {tag}",
                  f"python -m experiments.tagger_fooling --workdir {tagger} --input A.wav B.wav " + " ".join(flags),
                  rows)


def _remove_unshown_pictures(folder, page):
  """Deletes the PNGs under `folder` that `page` does not show (the commands' extra figures), to keep it small."""
  shown = set(re.findall(r'src="([^"]+)"', page))
  for root, _, files in os.walk(folder):
    for name in files:
      relative = os.path.relpath(os.path.join(root, name), folder)
      if name.endswith(".png") and html.escape(relative) not in shown:
        os.remove(os.path.join(root, name))


def _check_out(path):
  """Refuses an --out that exists and does not hold an earlier page, or whose parent cannot be written."""
  if os.path.exists(path) and not os.path.isfile(os.path.join(path, "index.html")):
    raise InputError(f"--out {path}: exists and holds no listening page; give a new folder (it is replaced only "
                     "when it holds an earlier page)")
  cli.make_output_dir(os.path.dirname(os.path.abspath(path)))


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.listening_page", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="docs/samples", help="the page's folder (default docs/samples)")
  parser.add_argument("--seconds", type=cli.positive_float, default=2.0,
                      help="seconds per garble sample, input clip and path step (default 2; 0.5 to 5)")
  parser.add_argument("--num", type=int, default=2, help="frames-route garble samples per gender (default 2)")
  parser.add_argument("--steps", type=int, default=5, help="points on the latent path (default 5)")
  parser.add_argument("--tagger", help="a tagger workdir for the fooling section (none is shipped; omitted without)")
  parser.add_argument("--tag", help="with --tagger: the tag to push both clips towards")
  args = parser.parse_args(argv)
  if not 0.5 <= args.seconds <= 5 or not 1 <= args.num <= 8 or not 2 <= args.steps <= 9:
    raise InputError(f"--seconds must be 0.5 to 5, --num 1 to 8 and --steps 2 to 9, got {args.seconds:g}, "
                     f"{args.num} and {args.steps}")
  if (args.tagger is None) != (args.tag is None):
    raise InputError("--tagger and --tag go together: give both for the fooling section, or neither")
  _check_out(args.out)
  parent = os.path.dirname(os.path.abspath(args.out))
  staging = tempfile.mkdtemp(prefix=".listening-page-", dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the page from a web server
  try:
    steps = ["garble", "voices", "copy synthesis", "interpolation", "style"] + (["fooling"] if args.tagger else [])
    progress = tqdm(steps, desc="listening page", unit="section", dynamic_ncols=True)
    sections = garble_sections(staging, args.seconds, args.num)
    progress.update(1)
    voices = unseen_voices(staging, args.seconds)
    progress.update(1)
    sections.append(copy_synthesis_section(staging, voices))
    progress.update(1)
    sections.append(interpolation_section(staging, voices, args.seconds, args.steps))
    progress.update(1)
    sections += style_sections(staging, voices, args.seconds)
    progress.update(1)
    if args.tagger:
      sections.append(fooling_section(staging, voices, args.tagger, args.tag))
      progress.update(1)
    else:
      sections.append("<h2>Tagger fooling</h2><p>No tagger is shipped: train one "
                      "(<code>python -m experiments.train_tagger --workdir runs/music_raw</code>) and rerun with "
                      "<code>--tagger runs/music_raw --tag TAG</code>.</p>")
    progress.close()
    with open(os.path.join(staging, "style.css"), "w") as file:
      file.write(STYLESHEET)
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>electric-beats: listen"
            "</title><link rel=\"stylesheet\" href=\"style.css\"></head><body><h1>electric-beats: listen</h1>"
            "<p>Every clip below was made by the shipped models with the command above its table. "
            "Regenerate with <code>python -m experiments.listening_page</code>.</p>"
            + "".join(sections) + "</body></html>\n")
    with open(os.path.join(staging, "index.html"), "w") as file:
      file.write(page)
    _remove_unshown_pictures(staging, page)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  if os.path.exists(args.out):
    shutil.rmtree(args.out)
  os.replace(staging, args.out)
  print(f"wrote {os.path.join(args.out, 'index.html')}")


if __name__ == "__main__":
  cli.run(main)
