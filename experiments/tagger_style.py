"""Neural style on a trained tagger's activations: content at a deep layer, Gram matrices of shallow layers.

examples:
  python -m experiments.tagger_style --workdir runs/tagger_raw --content test:0 --style test:5 --out out/tagger_style.wav
  python -m experiments.tagger_style --workdir runs/tagger_raw --content c.wav --style s.wav --out out/s.wav --init noise

--content and --style take an audio file or test:N, clip N of the checkpoint
corpus's test split. Writes OUT.wav (the optimised waveform) with OUT.png (its
spectrogram) beside it, OUT_all.png (content, style, result and the change from
the content) and OUT.json: every tag's probability for the content, the style
and the result, the SNR of the change from the content in dB, the spectral
flatness of the change (about 0.56 for white noise) and the loss trace.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import corpora
import dsp
from common import cli
from common.errors import InputError
from common.files import save_json
from corpora import tagging
from styletransfer import tagger_style
from tagger.pretrained import load_tagger


def load_clip(spec, model, corpus, seconds, data_dir):
  """[n] float32 audio of an audio file or 'test:N' (clip N of the corpus's test split), at most `seconds` long."""
  length = int(seconds * model.sample_rate)
  if spec.startswith("test:"):
    try:
      index = int(spec.split(":", 1)[1])
    except ValueError:
      raise InputError(f"{spec!r}: write test:N with N a clip number") from None
    clips = tagging.preload(corpora.load_split(*corpus, "test", data_dir))
    if not 0 <= index < len(clips):
      raise InputError(f"{spec!r}: the test split has clips 0..{len(clips) - 1}")
    audio = clips.clip(index)[:length]
  else:
    audio = dsp.load_audio(spec, model.sample_rate)[:length]
  tagger_style.check_clip(audio, model, spec)
  return audio


def parse_layers(text, model):
  layers = tuple(name.strip() for name in text.split(","))
  unknown = [name for name in layers if name not in model.layer_names()]
  if unknown:
    raise InputError(f"unknown layer {unknown[0]!r}; this tagger has {', '.join(model.layer_names())}")
  return layers


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.tagger_style", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="tagger run directory or checkpoint folder")
  parser.add_argument("--content", required=True, help="content clip: an audio file or test:N")
  parser.add_argument("--style", required=True, help="style clip: an audio file or test:N")
  parser.add_argument("--out", required=True, help="output .wav path")
  parser.add_argument("--content-layer", help="activation for content (default: the deepest)")
  parser.add_argument("--style-layers", help="comma-separated activations for style (default: frontend,stage0)")
  parser.add_argument("--content-weight", type=cli.non_negative_float, default=1.0)
  parser.add_argument("--style-weight", type=cli.non_negative_float, default=10.0)
  parser.add_argument("--steps", type=int, default=300, help="Adam steps on the waveform")
  parser.add_argument("--learning-rate", type=cli.positive_float, default=1e-3, help="Adam step size, in sample units")
  parser.add_argument("--init", choices=["content", "noise"], default="content", help="starting waveform")
  parser.add_argument("--seconds", type=cli.positive_float, default=4.0, help="use at most this much of each clip")
  parser.add_argument("--seed", type=cli.seed, default=0, help="seed of the noise start")
  parser.add_argument("--data-dir", help=f"TFDS data dir (default: ${corpora.DATA_DIR_ENV} or {corpora.DEFAULT_DATA_DIR})")
  args = parser.parse_args(argv)
  if args.steps < 1:
    raise InputError("--steps must be at least 1")
  cli.check_output_file(args.out, (".wav",))
  model, params, names, corpus = load_tagger(args.workdir)
  default_content, default_style = tagger_style.default_layers(model)
  content_layer = parse_layers(args.content_layer, model)[0] if args.content_layer else default_content
  style_layers = parse_layers(args.style_layers, model) if args.style_layers else default_style
  content = load_clip(args.content, model, corpus, args.seconds, args.data_dir)
  style = load_clip(args.style, model, corpus, args.seconds, args.data_dir)
  start_audio = content if args.init == "content" else 0.01 * np.asarray(
      jax.random.normal(jax.random.key(args.seed), content.shape), np.float32)

  start = time.perf_counter()
  result = tagger_style.style_transfer(model, params, jnp.asarray(content), jnp.asarray(style), jnp.asarray(start_audio),
                                       content_layer=content_layer, style_layers=style_layers, steps=args.steps,
                                       learning_rate=args.learning_rate, content_weight=args.content_weight,
                                       style_weight=args.style_weight)
  audio = np.asarray(jax.device_get(result.audio))
  seconds = time.perf_counter() - start
  change = audio - content
  stem = args.out[:-len(".wav")]
  dsp.save_audio(args.out, audio, model.sample_rate)
  dsp.save_spectrogram_png(stem + ".png", audio, model.sample_rate, "tagger style")
  dsp.save_spectrograms_png(stem + "_all.png", [("content", content), ("style", style), ("result", audio),
                                                ("change from content, amplified", dsp.peak_normalize(change, 0.9))],
                            model.sample_rate)
  probabilities = {name: dict(zip(names, np.asarray(tagger_style.probabilities(model, params, signal)).tolist()))
                   for name, signal in (("content", content), ("style", style), ("result", audio))}
  report = {"checkpoint": os.path.abspath(args.workdir), "content": args.content, "style": args.style,
            "content_layer": content_layer, "style_layers": list(style_layers), "steps": args.steps,
            "learning_rate": args.learning_rate, "content_weight": args.content_weight,
            "style_weight": args.style_weight, "init": args.init, "seconds": seconds,
            "snr_db_change_from_content": tagger_style.snr_db(content, audio),
            "spectral_flatness_content": tagger_style.spectral_flatness(content),
            "spectral_flatness_change": tagger_style.spectral_flatness(change),
            "loss_first": float(result.loss_trace[0]), "loss_last": float(result.loss_trace[-1]),
            "style_loss_first": float(result.trace[0]),
            "style_loss_last": float(result.trace[-1]),
            "probabilities": probabilities}
  save_json(stem + ".json", report)
  print(f"loss {report['loss_first']:.4g} -> {report['loss_last']:.4g} (style {report['style_loss_first']:.4g} -> "
        f"{report['style_loss_last']:.4g}), SNR of the change {report['snr_db_change_from_content']:.1f} dB, "
        f"flatness of the change {report['spectral_flatness_change']:.3f}, {seconds:.1f} s; wrote {args.out}")


if __name__ == "__main__":
  cli.run(main)
