"""Sample male/female "garble" from a speaker- and gender-conditioned WaveNet.

examples:
  python -m experiments.sample_garble --gender both --num 2 --seconds 2 --out out/garble
  python -m experiments.sample_garble --speaker espeak_m3 --temperature 0.9 --out out/m3
  python -m experiments.sample_garble --gender male --prime voice.wav --out out/primed

Writes one WAV and a spectrogram PNG beside it per sample, and prints each
file's share of active (above -40 dBFS) and of voiced frames and its
median F0 (pYIN). The checkpoint defaults to the model shipped in
models/wavenet_voices.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import dsp
from dsp.errors import InputError
from corpora.schema import SAMPLE_RATE
from experiments import cli
from wavenet import pretrained, sampling


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


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.sample_garble", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gender", choices=["male", "female", "both"], default="both",
                      help="condition on gender alone (default both: female and male)")
  parser.add_argument("--speaker", help="condition on one training speaker (and its gender) instead")
  parser.add_argument("--seconds", type=cli.positive_float, default=2.0,
                      help="length of each sample in seconds (default 2)")
  parser.add_argument("--temperature", type=cli.positive_float, default=0.9,
                      help="softmax temperature, > 0 (default 0.9: the shipped model's samples are mostly "
                      "unvoiced noise at 1 and fall silent more often at 0.8)")
  parser.add_argument("--seed", type=int, default=0, help="PRNG seed; the same seed gives the same audio")
  parser.add_argument("--num", type=int, default=2, help="samples per gender or speaker (default 2)")
  parser.add_argument("--prime", help="an audio file the garble continues from (its last receptive field of sound, "
                      "silence trimmed, seeds every stream; the written audio is the continuation)")
  parser.add_argument("--checkpoint", default=pretrained.SHIPPED_CHECKPOINT, help="training workdir or checkpoint folder "
                      "(default: the shipped models/wavenet_voices)")
  parser.add_argument("--out", default="out/garble", help="output directory (default out/garble)")
  args = parser.parse_args(argv)
  if args.num < 1:
    raise InputError(f"--num must be at least 1, got {args.num}")
  num_samples = cli.seconds_to_samples(args.seconds, SAMPLE_RATE)
  model, params, labels = load_conditioned_wavenet(args.checkpoint)
  streams = conditions(args, labels)
  prime = None if args.prime is None else prime_codes(args.prime, model, len(streams))
  cli.make_output_dir(args.out)
  ids = {"speaker": jnp.array([s for _, s, _ in streams], jnp.int32),
         "gender": jnp.array([g for _, _, g in streams], jnp.int32)}
  prime_length = 1 if prime is None else prime.shape[1]
  conditioning = sampling.prepare_conditioning(model, params, len(streams), prime_length + num_samples, ids)
  tic = time.perf_counter()
  codes = sampling.sample(model, params, jax.random.key(args.seed), num_samples, conditioning, prime=prime,
                          temperature=args.temperature)
  audio = np.asarray(dsp.dequantize(np.asarray(codes), model.num_classes - 1))
  elapsed = time.perf_counter() - tic
  print(f"sampled {len(streams)} x {args.seconds:g} s in {elapsed:.1f} s (compilation included)")
  paths = [os.path.join(args.out, f"{name}.wav") for name, _, _ in streams]
  width = max(len(path) for path in paths + ["file"])
  print(f"{'file':<{width}} {'condition':<18} {'active %':>8} {'voiced %':>8} {'median F0 (Hz)':>14}")
  f0_by_condition = {}
  for path, (name, speaker, gender), clip in zip(paths, streams, audio):
    dsp.save_audio(path, clip, SAMPLE_RATE)
    condition = labels["gender"][gender] + ("" if speaker < 0 else f" ({labels['speaker'][speaker]})")
    dsp.save_spectrogram_png(os.path.join(args.out, f"{name}.png"), clip, SAMPLE_RATE, f"{name}: {condition}")
    f0, voiced_fraction = dsp.track_summary(dsp.f0_track(clip, SAMPLE_RATE))
    f0_by_condition.setdefault(condition, []).append(f0)
    print(f"{path:<{width}} {condition:<18} {100 * dsp.active_fraction(clip, SAMPLE_RATE):>8.0f} "
          f"{100 * voiced_fraction:>8.0f} {'-' if np.isnan(f0) else f'{f0:.1f}':>14}")
  for condition, values in f0_by_condition.items():
    voiced = [f0 for f0 in values if not np.isnan(f0)]
    spread = f", median F0 {min(voiced):.1f}-{max(voiced):.1f} Hz" if voiced else ""
    print(f"{condition}: {len(voiced)} of {len(values)} voiced{spread}")
  print("active %: share of 25 ms frames above -40 dBFS; voiced %: share of pYIN frames voiced")


if __name__ == "__main__":
  cli.run(main)
