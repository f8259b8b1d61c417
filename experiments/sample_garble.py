"""Sample male/female "garble": babble in a speaker's or a gender's voice, without words.

examples:
  python -m experiments.sample_garble --gender both --num 2 --seconds 2 --out out/garble
  python -m experiments.sample_garble --speaker espeak_m3 --temperature 0.8 --out out/m3
  python -m experiments.sample_garble --gender male --prime voice.wav --out out/primed
  python -m experiments.sample_garble --mode direct --gender both --out out/direct

Two routes:
  frames (default): a frame prior (models/frame_prior) draws pitch, voicing,
    energy and envelope at 100 frames per second for the speaker or gender;
    the vocoder (models/vocoder) renders them. --temperature scales the
    prior's Gaussian spread.
  direct: the speaker- and gender-conditioned sample-level WaveNet
    (models/wavenet_voices) draws every sample; --temperature scales its
    softmax.

Writes one WAV and a spectrogram PNG beside it per sample, and prints each
file's share of active (above -40 dBFS) and of voiced frames and its
median F0 (pYIN); summary.json holds the same numbers.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import dsp
from common import cli
from common.errors import InputError
from corpora.schema import SAMPLE_RATE
from frameprior import model as prior_lib
from frameprior.train import build_prior
from training.checkpoint import load_model_checkpoint
from vocoder import features as features_lib
from vocoder import synthesis
from wavenet import pretrained, sampling

REPO_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
SHIPPED_PRIOR = os.path.join(REPO_MODELS, "frame_prior")
FRAME_RATE = 100  # frames per second of the prior and the vocoder


def load_conditioned_wavenet(path):
  """(model, params, labels) of a WaveNet conditioned on speaker and gender ids."""
  model, params, labels = pretrained.load_wavenet(path)
  if "gender" not in dict(model.global_categories) or "speaker_gender" not in labels:
    raise InputError(f"{path}: this WaveNet is not conditioned on speaker and gender; pass one trained with "
                     "experiments/configs/wavenet_voices.py")
  return model, params, labels


def conditions(args, labels):
  """[(name, speaker id or -1, gender id)] of the streams to sample, `args.num` of each."""
  genders = labels["gender"]
  if args.speaker:
    known = labels["speaker_gender"]
    if args.speaker not in known:
      raise InputError(f"unknown speaker {args.speaker!r}; known speakers: {', '.join(sorted(known))}")
    wanted = [(args.speaker, labels["speaker"].index(args.speaker), genders.index(known[args.speaker]))]
  else:
    chosen = ["female", "male"] if args.gender == "both" else [args.gender]
    wanted = [(gender, -1, genders.index(gender)) for gender in chosen]
  return [(f"{name}_{i:02d}", speaker, gender) for name, speaker, gender in wanted for i in range(args.num)]


def prime_codes(path, model, batch):
  """[batch, receptive_field] int32 mu-law codes of the last receptive field of sound in the audio file at `path`.

  Leading and trailing silence is trimmed first, as in the training corpus
  (after silence the model tends to stay silent). The sampler's state after a
  prime depends on its last receptive_field samples only, so earlier ones are
  left out.

  Raises:
    InputError: unreadable, empty or silent audio, or audio shorter than the receptive field.
  """
  audio = dsp.trim_silence(dsp.load_audio(path, SAMPLE_RATE))
  if len(audio) < model.receptive_field:
    raise InputError(f"--prime {path}: {len(audio)} samples of sound, shorter than the model's receptive field "
                     f"({model.receptive_field} samples at {SAMPLE_RATE} Hz); give a longer clip")
  if dsp.active_fraction(audio, SAMPLE_RATE) == 0.0:
    raise InputError(f"--prime {path}: the clip is silent (no 25 ms frame above -40 dBFS); give a clip with sound")
  codes = dsp.quantize(audio[-model.receptive_field:], model.num_classes - 1)
  return jnp.broadcast_to(jnp.asarray(codes, jnp.int32), (batch, model.receptive_field))


def load_frame_prior(path):
  """(model, params, labels) of a frame prior checkpoint; InputError for any other model."""
  model_config, params, labels = load_model_checkpoint(path)
  if model_config.get("architecture") != "frame_prior":
    raise InputError(f"{path}: not a frame prior checkpoint; --mode frames takes one written by "
                     "experiments.train_frame_prior (or use --mode direct for a WaveNet)")
  return build_prior(model_config), params, labels


def prime_frames(path, batch):
  """[batch, P, C] frame vectors of the audio file at `path` (silence trimmed), for --mode frames."""
  audio, features = synthesis.analyse_recording(path, SAMPLE_RATE, flag="--prime")
  del audio
  vectors = features_lib.frame_vectors(features)
  return jnp.broadcast_to(jnp.asarray(vectors), (batch,) + vectors.shape)


def frames_route(args, streams):
  """Loads the prior, the vocoder and the prime (checking all), and returns `num_samples -> [B, n] audio`."""
  prior, prior_params, _ = load_frame_prior(args.checkpoint)
  vocoder, vocoder_params, _ = synthesis.load_vocoder(args.vocoder)
  prime = None if args.prime is None else prime_frames(args.prime, len(streams))
  return lambda num_samples: _sample_frames(args, streams, num_samples, prior, prior_params, vocoder,
                                            vocoder_params, prime)


def _sample_frames(args, streams, num_samples, prior, prior_params, vocoder, vocoder_params, prime):
  """[B, num_samples] audio: the frame prior's frames rendered by the vocoder."""
  synthesis.check_memory(vocoder, vocoder_params, len(streams), num_samples)  # Before the prior draws anything.
  num_frames = -(-num_samples // (SAMPLE_RATE // FRAME_RATE))
  phrase, pause = max(1, round(args.phrase_seconds * FRAME_RATE)), round(args.pause_seconds * FRAME_RATE)
  phrases = -(-num_frames // (phrase + pause))
  ids = [(jnp.array([s for _, s, _ in streams] * count, jnp.int32), jnp.array([g for _, _, g in streams] * count,
                                                                              jnp.int32)) for count in (1, phrases - 1)]
  first_key, rest_key, vocoder_key = jax.random.split(jax.random.key(args.seed), 3)
  draw = jax.jit(prior_lib.sample, static_argnums=(0, 3))
  drawn = [np.asarray(draw(prior, prior_params, first_key, phrase, *ids[0], args.temperature, prime))]
  if phrases > 1:  # Only the first phrase continues the prime; each later one starts afresh.
    drawn += list(np.asarray(draw(prior, prior_params, rest_key, phrase, *ids[1], args.temperature)).reshape(
        phrases - 1, len(streams), phrase, -1))
  features = []
  for stream in range(len(streams)):
    parts = []
    for part in drawn:
      log_f0 = part[stream, -1, 0] * features_lib.LOG_F0_SCALE + features_lib.LOG_F0_CENTRE
      parts += [part[stream], features_lib.silent_vectors(pause, log_f0)]
    features.append(features_lib.features_from_vectors(np.concatenate(parts)[:num_frames]))
  return synthesis.vocode(vocoder, vocoder_params, features, num_samples, vocoder_key, SAMPLE_RATE)


def direct_route(args, streams):
  """Loads the WaveNet and the prime (checking both), and returns `num_samples -> [B, n] audio`."""
  model, params, _ = load_conditioned_wavenet(args.checkpoint)
  prime = None if args.prime is None else prime_codes(args.prime, model, len(streams))
  return lambda num_samples: _sample_direct(args, streams, num_samples, model, params, prime)


def _sample_direct(args, streams, num_samples, model, params, prime):
  """[B, num_samples] audio drawn sample by sample from the conditioned WaveNet."""
  ids = {"speaker": jnp.array([s for _, s, _ in streams], jnp.int32),
         "gender": jnp.array([g for _, _, g in streams], jnp.int32)}
  prime_length = 1 if prime is None else prime.shape[1]
  sharpening = sampling.Sharpening(periodicity=args.sharpen, floor=args.floor)
  sampling.check_memory(model, params, len(streams), num_samples, prime_length + num_samples,
                        None if prime is None else prime_length, sharpening=sharpening)
  conditioning = sampling.prepare_conditioning(model, params, len(streams), prime_length + num_samples, ids)
  codes = sampling.sample(model, params, jax.random.key(args.seed), num_samples, conditioning, prime=prime,
                          temperature=args.temperature, sharpening=sharpening)
  return np.asarray(dsp.dequantize(np.asarray(codes), model.num_classes - 1))


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.sample_garble", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--mode", choices=["frames", "direct"], default="frames",
                      help="frames: frame prior + vocoder (default); direct: the sample-level WaveNet")
  parser.add_argument("--gender", choices=["male", "female", "both"], default="both",
                      help="condition on gender alone (default both: female and male)")
  parser.add_argument("--speaker", help="condition on one training speaker (and its gender) instead")
  parser.add_argument("--seconds", type=cli.positive_float, default=2.0,
                      help="length of each sample in seconds (default 2)")
  parser.add_argument("--temperature", type=cli.positive_float, default=None,
                      help="> 0; frames: scales the prior's Gaussian spread (default 0.7); direct: the WaveNet's "
                      "softmax temperature (default 0.9)")
  parser.add_argument("--seed", type=cli.seed, default=0, help="PRNG seed; the same seed gives the same audio")
  parser.add_argument("--num", type=int, default=2, help="samples per gender or speaker (default 2)")
  parser.add_argument("--prime", help="an audio file the garble continues from (frames: its frames are read first; "
                      "direct: its last receptive field of sound); the written audio is the continuation")
  parser.add_argument("--checkpoint", help="frames: a frame prior (default models/frame_prior); direct: a WaveNet "
                      "(default models/wavenet_voices); a training workdir or checkpoint folder")
  parser.add_argument("--phrase-seconds", type=cli.positive_float, default=1.2,
                      help="frames mode: length of each phrase drawn from the prior (default 1.2: the prior is "
                      "trained on 2 s windows, and its pitch drifts in longer draws; see docs/garble.md)")
  parser.add_argument("--pause-seconds", type=cli.non_negative_float, default=0.15,
                      help="frames mode: silence between phrases (default 0.15)")
  parser.add_argument("--sharpen", type=cli.non_negative_float, default=0.0,
                      help="direct mode: LPCNet's pitch-dependent sharpening, the softmax raised to the power "
                      "1 + S max(0, 1.5 g - 0.5) where the output's pitch correlation is g (default 0: off; 1 is "
                      "LPCNet's)")
  parser.add_argument("--floor", type=cli.non_negative_float, default=0.0,
                      help="direct mode: drop classes below this probability and renormalise (default 0: off; "
                      "LPCNet uses 0.002; below 1/256)")
  parser.add_argument("--vocoder", default=synthesis.SHIPPED_CHECKPOINT,
                      help="frames mode: the vocoder that renders the frames (default models/vocoder)")
  parser.add_argument("--out", default="out/garble", help="output directory (default out/garble)")
  args = parser.parse_args(argv)
  if not 1 <= args.num <= 64:
    raise InputError(f"--num must be 1 to 64, got {args.num}")
  if args.seconds > 60:
    raise InputError(f"--seconds {args.seconds:g}: give at most 60")
  frames_mode = args.mode == "frames"
  if frames_mode and (args.sharpen or args.floor):
    raise InputError("--sharpen and --floor shape the sample-level WaveNet's softmax: give them with --mode direct")
  if not args.floor < 1 / 256:
    raise InputError(f"--floor {args.floor:g}: give a probability below 1/256 (0.0039), e.g. 0.002")
  if args.checkpoint is None:
    args.checkpoint = SHIPPED_PRIOR if frames_mode else pretrained.SHIPPED_CHECKPOINT
  if args.temperature is None:
    args.temperature = 0.7 if frames_mode else 0.9
  num_samples = cli.seconds_to_samples(args.seconds, SAMPLE_RATE)
  labels = (load_frame_prior if frames_mode else load_conditioned_wavenet)(args.checkpoint)[2]
  streams = conditions(args, labels)
  draw = (frames_route if frames_mode else direct_route)(args, streams)
  tic = time.perf_counter()
  audio = draw(num_samples)
  elapsed = time.perf_counter() - tic
  print(f"sampled {len(streams)} x {args.seconds:g} s ({args.mode}) in {elapsed:.1f} s (compilation included)")
  paths = [os.path.join(args.out, f"{name}.wav") for name, _, _ in streams]
  width = max(len(path) for path in paths + ["file"])
  print(f"{'file':<{width}} {'condition':<18} {'active %':>8} {'voiced %':>8} {'of active':>9} {'median F0 (Hz)':>14}")
  with cli.output_dir(args.out) as staging:
    f0_by_condition, summary = {}, []
    for path, (name, speaker, gender), clip in zip(paths, streams, audio):
      dsp.save_audio(os.path.join(staging, f"{name}.wav"), clip, SAMPLE_RATE)
      condition = labels["gender"][gender] + ("" if speaker < 0 else f" ({labels['speaker'][speaker]})")
      dsp.save_spectrogram_png(os.path.join(staging, f"{name}.png"), clip, SAMPLE_RATE, f"{name}: {condition}")
      track = dsp.f0_track(clip, SAMPLE_RATE)
      f0, voiced_fraction = dsp.track_summary(track)
      of_active = dsp.pitch.voiced_share_of_active(clip, SAMPLE_RATE, track)
      f0_by_condition.setdefault(condition, []).append(f0)
      active = dsp.active_fraction(clip, SAMPLE_RATE)
      summary.append({"file": os.path.basename(path), "gender": labels["gender"][gender],
                       "speaker": None if speaker < 0 else labels["speaker"][speaker], "active_share": float(active),
                       "voiced_share": float(voiced_fraction),
                       "voiced_share_of_active": None if np.isnan(of_active) else float(of_active),
                       "median_f0_hz": None if np.isnan(f0) else float(f0)})
      print(f"{path:<{width}} {condition:<18} {100 * active:>8.0f} "
            f"{100 * voiced_fraction:>8.0f} {'-' if np.isnan(of_active) else f'{100 * of_active:.0f}':>9} "
            f"{'-' if np.isnan(f0) else f'{f0:.1f}':>14}")
    for condition, values in f0_by_condition.items():
      voiced = [f0 for f0 in values if not np.isnan(f0)]
      spread = f", median F0 {min(voiced):.1f}-{max(voiced):.1f} Hz" if voiced else ""
      print(f"{condition}: {len(voiced)} of {len(values)} voiced{spread}")
    with open(os.path.join(staging, "summary.json"), "w") as file:
      json.dump({"command": vars(args), "samples": summary}, file, indent=1)
    print("active %: share of 25 ms frames above -40 dBFS; voiced %: share of pYIN frames voiced; "
          "of active: share of pYIN frames above -40 dBFS that are voiced")


if __name__ == "__main__":
  cli.run(main)
