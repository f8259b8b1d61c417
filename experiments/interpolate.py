"""Interpolate between two voices in the global latent of a VLAE and decode the path.

examples:
  python -m experiments.interpolate --a A.wav --b B.wav --steps 7 --out out/interp
  python -m experiments.interpolate --from-gender male --to-gender female --steps 7 --out out/m2f
  python -m experiments.interpolate --checkpoint runs/vlae_small_fb --a A.wav --b B.wav --out out/sample_level

Two kinds of VLAE. The frame-rate VLAE (the default, models/frame_vlae)
encodes a recording's frame features (any sample rate, stereo folded, at
least 0.25 s with voiced speech; the log-mel bands a band-limited recording,
such as one made at 8 kHz, lacks are filled in from its lower ones, see
vlae/band_fill.py) and decodes each step into frames that the vocoder
(--vocoder, default models/vocoder) renders; it also writes
f0_path.png (median F0 and spectral centroid per step). The sample-level
audio VLAE (vlae/audio.py) encodes the central --crop samples and decodes
with its WaveNet.

Each endpoint is a clip (its posterior mean; the sample-level VLAE encodes
its central --crop samples) or a gender (the mean of the posterior means of
that gender's training utterances). Every point of the path is decoded by the incremental WaveNet
sampler with the same PRNG key, so only z changes from step to step. Writes
step_NN.wav with a spectrogram step_NN.png beside each, path.png (the
spectrograms along the path) and path.json (the latents, the median F0 of
each step and their Spearman correlation with the step), and prints the F0
table.
"""

import argparse
import os

import jax
import numpy as np
import scipy.stats

import dsp
from common import cli, figures
from common.errors import InputError
from common.files import save_json
from corpora.schema import SAMPLE_RATE
from dsp.frames import BANDWIDTH_FLOOR_DB, NUM_MELS
from frameprior.train import load_frames
from training.checkpoint import load_model_config
from vlae import audio, audio_inference, frame_evaluation, frame_inference, latent_paths
from vlae.audio_evaluation import gender_means
from vocoder import metrics as vocoder_metrics
from vocoder import synthesis

SHIPPED_FRAME_VLAE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                                  "frame_vlae")


def check_gender(labels, gender, flag):
  """Raises InputError unless `gender` is one of the checkpoint's gender labels."""
  known = labels.get("gender", ())
  if gender not in known:
    raise InputError(f"{flag} {gender}: unknown gender; known: {', '.join(known) or 'none'} (the checkpoint's labels)")


def endpoint(model, params, clip_path, gender, means, crop, flag):
  """(name, z [latent_features + F * local]) of one end of the path.

  Args:
    model, params: the audio VLAE.
    clip_path: audio file whose central `crop` samples are encoded (posterior mean), or None.
    gender: with no clip, the gender whose entry of `means` is the endpoint.
    means: {gender: z} of `gender_means` (computed once for both endpoints).
    crop: samples encoded from the clip.
    flag: the flag that named the gender, for errors.
  """
  if clip_path:
    clip = audio_inference.central_crop(dsp.load_audio(clip_path, audio.SAMPLE_RATE), crop)
    audio_inference.check_clip(clip, model, clip_path)
    return os.path.basename(clip_path), np.asarray(audio_inference.encode(model, params, clip[None]).mean[0])
  if gender not in means:
    raise InputError(f"{flag} {gender}: the training split has no {gender} utterance")
  return f"{gender} mean", means[gender]


def spearman(values):
  """Spearman correlation of `values` with their index, over the finite ones (NaN if fewer than 3)."""
  index = np.arange(len(values))
  finite = np.isfinite(values)
  if finite.sum() < 3:
    return float("nan")
  return float(scipy.stats.spearmanr(index[finite], np.asarray(values)[finite]).statistic)


PHRASE_FRAMES, PAUSE_FRAMES = 120, 15  # the decoder draws 1.2 s phrases with 0.15 s pauses, as garble does


def frame_gender_means(model, params, labels, data_dir):
  """{gender: mean posterior mean of that gender's training utterances} of a frame-rate VLAE."""
  clips, split_frames, _ = load_frames(frame_evaluation.corpus_of(labels, data_dir), "train")
  means = frame_inference.encode_features(model, params, [split_frames.clip(i) for i in range(len(clips))])
  return {gender: means[clips.gender == index].mean(axis=0) for index, gender in enumerate(labels["gender"])
          if np.any(clips.gender == index)}


def frame_route(args):
  """Interpolation with a frame-rate VLAE, rendered by the vocoder; writes and prints as `main` says."""
  model, params, labels = frame_inference.load_frame_vlae(args.checkpoint)
  vocoder, vocoder_params, _ = synthesis.load_vocoder(args.vocoder)
  seconds = 2.7 if args.seconds is None else args.seconds
  temperature = 0.7 if args.temperature is None else args.temperature
  num_samples = cli.seconds_to_samples(seconds, SAMPLE_RATE)
  for gender, flag in ((args.from_gender, "--from-gender"), (args.to_gender, "--to-gender")):
    if gender is not None:
      check_gender(labels, gender, flag)
  means = frame_gender_means(model, params, labels, args.data_dir) if args.from_gender or args.to_gender else {}
  ends, inputs, bands = [], [], []
  for path, gender, flag in ((args.a, args.from_gender, "--a"), (args.b, args.to_gender, "--b")):
    if path:
      recording, features = synthesis.analyse_recording(path, SAMPLE_RATE, flag=flag)
      encoded = frame_inference.encode_recording(model, params, labels, recording, features)
      ends.append((os.path.basename(path), encoded.mean))
      inputs.append(dsp.median_f0(recording, SAMPLE_RATE))
      bands.append({"bandwidth_hz": encoded.bandwidth_hz, "observed": encoded.observed_bands,
                    "filled": encoded.filled})
      if encoded.observed_bands < NUM_MELS:
        missing = NUM_MELS - encoded.observed_bands
        print(f"{flag} {path}: band-limited (nothing within {BANDWIDTH_FLOOR_DB:.0f} dB of its peak above "
              f"{encoded.bandwidth_hz / 1000:.2f} kHz): "
              + (f"its top {missing} of {NUM_MELS} log-mel bands are filled in from the lower ones" if encoded.filled
                 else "this checkpoint has no band statistics to fill its top bands in; re-export it with "
                 "`python -m experiments.export_model --band-statistics`"))
    else:
      ends.append((f"{gender} mean", means[gender]))
      inputs.append(float("nan"))
      bands.append(None)
  (name_a, z_a), (name_b, z_b) = ends
  path = latent_paths.interpolation_path(z_a, z_b, args.steps, args.mode)
  with cli.output_dir(args.out) as staging:
    key_frames, key_vocoder = jax.random.split(jax.random.key(args.seed))
    num_frames = -(-num_samples // (SAMPLE_RATE // 100))
    features = frame_inference.decode_to_features(model, params, path, num_frames, key_frames, temperature, PHRASE_FRAMES,
                                             PAUSE_FRAMES)
    clips = synthesis.vocode(vocoder, vocoder_params, features, num_samples, key_vocoder, SAMPLE_RATE)
    rows, titles = [], []
    for step, clip in enumerate(clips):
      title = f"step {step}/{args.steps - 1}: {name_a} -> {name_b} ({args.mode})"
      dsp.save_audio(os.path.join(staging, f"step_{step:02d}.wav"), clip, SAMPLE_RATE)
      dsp.save_spectrogram_png(os.path.join(staging, f"step_{step:02d}.png"), clip, SAMPLE_RATE, title)
      f0, voiced = dsp.track_summary(dsp.f0_track(clip, SAMPLE_RATE))
      rows.append((f0, voiced, vocoder_metrics.median_spectral_centroid(clip, SAMPLE_RATE)))
      titles.append(title)
    dsp.save_spectrograms_png(os.path.join(staging, "path.png"), list(zip(titles, clips)), SAMPLE_RATE)
    f0 = np.array([row[0] for row in rows])
    correlation = spearman(f0)
    figure, axis = figures.pyplot().subplots(figsize=(6, 3.5))
    fractions = np.linspace(0, 1, args.steps)
    axis.plot(fractions, f0, "o-", label="median F0 (Hz)")
    axis.set_xlabel(f"fraction of the path {name_a} -> {name_b}")
    axis.set_ylabel("median F0 (Hz)")
    twin = axis.twinx()
    twin.plot(fractions, [row[2] for row in rows], "s--", color="tab:orange", label="spectral centroid (Hz)")
    twin.set_ylabel("median spectral centroid (Hz)")
    axis.set_title(f"Spearman(F0, step) = {correlation:.2f}")
    figure.legend(loc="upper left")
    figures.save_figure(figure, os.path.join(staging, "f0_path.png"))
    save_json(os.path.join(staging, "path.json"), {
        "a": name_a, "b": name_b, "mode": args.mode, "seed": args.seed, "checkpoint": args.checkpoint,
        "latents": path.tolist(), "input_median_f0_hz": [None if np.isnan(v) else v for v in inputs],
        "input_mel_bands": bands, "median_f0_hz": [None if np.isnan(v) else v for v in f0],
        "voiced_share": [row[1] for row in rows],
        "spectral_centroid_hz": [None if np.isnan(row[2]) else row[2] for row in rows],
        "spearman_f0_vs_step": None if np.isnan(correlation) else correlation})
    print(f"{'step':>4} {'fraction':>8} {'median F0 (Hz)':>14} {'voiced %':>8} {'centroid (Hz)':>13}")
    for step, (value, voiced, centroid) in enumerate(rows):
      print(f"{step:>4} {step / (args.steps - 1):>8.3f} {'-' if np.isnan(value) else f'{value:.1f}':>14} "
            f"{100 * voiced:>8.0f} {'-' if np.isnan(centroid) else f'{centroid:.0f}':>13}")
    ends_f0 = ", ".join(f"{name} {v:.1f} Hz" for name, v in ((name_a, inputs[0]), (name_b, inputs[1]))
                        if np.isfinite(v))
    print(f"Spearman(F0, step) = {'-' if np.isnan(correlation) else f'{correlation:.3f}'}"
          f"{'; inputs: ' + ends_f0 if ends_f0 else ''}; wrote {args.out}")


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.interpolate", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  start = parser.add_mutually_exclusive_group(required=True)
  start.add_argument("--a", help="audio file at the start of the path")
  start.add_argument("--from-gender", help="start at this gender's mean posterior (a gender name from the "
                     "checkpoint's labels; an unknown one gets the list)")
  end = parser.add_mutually_exclusive_group(required=True)
  end.add_argument("--b", help="audio file at the end of the path")
  end.add_argument("--to-gender", help="end at this gender's mean posterior (a gender name from the checkpoint's "
                   "labels)")
  parser.add_argument("--steps", type=int, default=7, help="points on the path, endpoints included (default 7)")
  parser.add_argument("--mode", choices=["slerp", "lerp"], default="slerp", help="path shape (default slerp)")
  parser.add_argument("--seconds", type=cli.positive_float, default=None,
                      help="seconds decoded per step (default: 2.7 for the frame-rate VLAE, 0.5 for the "
                      "sample-level one, where local latents allow at most the encoded --crop)")
  parser.add_argument("--crop", type=int, default=8000, help="central samples of each clip encoded (default 8000)")
  parser.add_argument("--temperature", type=cli.positive_float, default=None,
                      help="> 0; the frame decoder's Gaussian spread (default 0.7) or the WaveNet's softmax "
                      "temperature (default 1)")
  parser.add_argument("--vocoder", default=synthesis.SHIPPED_CHECKPOINT,
                      help="frame-rate VLAE: the vocoder that renders the frames (default models/vocoder)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed, shared by every step (default 0)")
  parser.add_argument("--checkpoint", default=SHIPPED_FRAME_VLAE,
                      help="a frame-rate VLAE (default: the shipped models/frame_vlae) or an audio VLAE: a training "
                      "workdir, its checkpoints folder or one step's folder")
  parser.add_argument("--batch-size", type=int, default=8, help="crops per encoder pass for gender means")
  parser.add_argument("--data-dir", help="corpus data dir for gender means (default $ELECTRIC_BEATS_DATA or data/tfds)")
  parser.add_argument("--out", required=True, help="output directory")
  args = parser.parse_args(argv)
  if args.batch_size < 1:
    raise InputError(f"--batch-size must be positive, got {args.batch_size}")
  if args.steps < 2:
    raise InputError(f"--steps must be at least 2, got {args.steps}")
  if args.seconds is not None and args.seconds > 30:
    raise InputError(f"--seconds {args.seconds:g}: give at most 30")
  if load_model_config(args.checkpoint)[0].get("architecture") == "frame_vlae":
    return frame_route(args)
  args.seconds = 0.5 if args.seconds is None else args.seconds
  args.temperature = 1.0 if args.temperature is None else args.temperature
  num_samples = cli.seconds_to_samples(args.seconds, audio.SAMPLE_RATE)
  model, params, labels = audio_inference.load_vlae(args.checkpoint)
  audio_inference.check_crop(model, args.crop)
  for gender, flag in ((args.from_gender, "--from-gender"), (args.to_gender, "--to-gender")):
    if gender is not None:
      check_gender(labels, gender, flag)
  means = {}
  if args.from_gender or args.to_gender:
    means = gender_means(model, params, labels, args.crop, args.batch_size, args.data_dir)
  name_a, z_a = endpoint(model, params, args.a, args.from_gender, means, args.crop, "--from-gender")
  name_b, z_b = endpoint(model, params, args.b, args.to_gender, means, args.crop, "--to-gender")
  if z_a.shape != z_b.shape:
    raise InputError(f"the endpoints have latents of different sizes ({z_a.shape[0]} vs {z_b.shape[0]}: local "
                     "latent sequences of different lengths); pass clips of at least --crop samples each")
  path = latent_paths.interpolation_path(z_a, z_b, args.steps, args.mode)
  audio_inference.check_decode_length(model, path, num_samples)
  with cli.output_dir(args.out) as staging:
    clips = audio_inference.decode(model, params, path, num_samples, jax.random.key(args.seed), args.temperature)
    f0 = []
    titles = []
    for step, clip in enumerate(clips):
      title = f"step {step}/{args.steps - 1}: {name_a} -> {name_b} ({args.mode})"
      dsp.save_audio(os.path.join(staging, f"step_{step:02d}.wav"), clip, audio.SAMPLE_RATE)
      dsp.save_spectrogram_png(os.path.join(staging, f"step_{step:02d}.png"), clip, audio.SAMPLE_RATE, title)
      f0.append(dsp.median_f0(clip, audio.SAMPLE_RATE))
      titles.append(title)
    dsp.save_spectrograms_png(os.path.join(staging, "path.png"), list(zip(titles, clips)), audio.SAMPLE_RATE)
    correlation = spearman(np.array(f0))
    save_json(os.path.join(staging, "path.json"), {
        "a": name_a, "b": name_b, "mode": args.mode, "seed": args.seed, "checkpoint": args.checkpoint,
        "latents": path.tolist(), "median_f0_hz": [None if np.isnan(value) else value for value in f0],
        "spearman_f0_vs_step": None if np.isnan(correlation) else correlation})
    print(f"{'step':>4} {'fraction':>8} {'median F0 (Hz)':>14}")
    for step, value in enumerate(f0):
      print(f"{step:>4} {step / (args.steps - 1):>8.3f} {'-' if np.isnan(value) else f'{value:.1f}':>14}")
    print(f"Spearman(F0, step) = {'-' if np.isnan(correlation) else f'{correlation:.3f}'}; wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
