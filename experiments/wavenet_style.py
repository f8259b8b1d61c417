"""Neural style on WaveNet activations, decoded to a one-hot input by coordinate descent.

examples:
  python -m experiments.wavenet_style --content man.wav --style woman.wav --out out/style.wav
  python -m experiments.wavenet_style --content c.wav --style s.wav --out out/s.wav --method joint --joint-steps 300

Writes OUT.wav (the decoded input), OUT.png (its spectrogram), OUT_losses.png
(the loss traces) and OUT.json (content and style losses of the final one-hot
input for each method, with timings). With --method both, OUT.wav is the
coordinate-descent result and OUT_joint.wav the joint-relaxation one.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import dsp
from common import cli, figures
from common.errors import InputError
from common.files import save_json
from corpora import schema
from styletransfer import wavenet_style as ws
from wavenet import pretrained

SAMPLE_RATE = schema.SAMPLE_RATE


def parse_layers(text, num_layers, flag):
  try:
    layers = tuple(int(item) for item in text.split(","))
  except ValueError:
    raise InputError(f"{flag} {text!r}: give layer indices separated by commas, e.g. 0,4,8") from None
  bad = [layer for layer in layers if not 0 <= layer < num_layers]
  if bad:
    raise InputError(f"{flag}: layer {bad[0]} out of range; this WaveNet has layers 0..{num_layers - 1}")
  return layers


def load_codes(path, model, seconds, name):
  audio = dsp.load_audio(path, SAMPLE_RATE)[:int(seconds * SAMPLE_RATE)]
  if len(audio) < model.receptive_field:
    raise InputError(f"{path}: {name} clip has {len(audio)} samples, fewer than the WaveNet's receptive field "
                     f"({model.receptive_field}); give a longer clip")
  return jnp.asarray(dsp.quantize(audio, model.num_classes - 1))


def main(argv):
  parser = cli.ArgumentParser(prog="python -m experiments.wavenet_style", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--content", required=True, help="content clip (any WAV/FLAC/OGG)")
  parser.add_argument("--style", required=True, help="style clip")
  parser.add_argument("--out", required=True, help="output .wav path")
  parser.add_argument("--method", choices=["coordinate", "joint", "both"], default="both")
  parser.add_argument("--block", type=int, default=64, help="columns optimised together (1: the report's procedure)")
  parser.add_argument("--steps", type=int, default=20, help="Adam steps per block")
  parser.add_argument("--sweeps", type=int, default=1, help="passes of coordinate descent over the signal")
  parser.add_argument("--joint-steps", type=int, default=200, help="Adam steps of the joint relaxation")
  parser.add_argument("--learning-rate", type=cli.positive_float, default=0.1, help="Adam learning rate on the logits")
  parser.add_argument("--content-layer", help="residual layer for content (default: about two thirds of depth)")
  parser.add_argument("--style-layers", help="comma-separated residual layers for style (default: every fourth)")
  parser.add_argument("--content-weight", type=cli.non_negative_float, default=1.0)
  parser.add_argument("--style-weight", type=cli.non_negative_float, default=100.0)
  parser.add_argument("--init", choices=["content", "noise"], default="content",
                      help="coordinate descent's starting input (content: the content clip's codes; noise: "
                      "uniform random codes from --seed); each block keeps these codes unless its optimised argmax "
                      "lowers the objective. The joint relaxation ignores --init and starts from uniform logits")
  parser.add_argument("--seconds", type=cli.positive_float, default=1.0, help="use at most this much of each clip")
  parser.add_argument("--gender", choices=["female", "male"], help="condition the WaveNet on a gender (default none)")
  parser.add_argument("--seed", type=cli.seed, default=0)
  parser.add_argument("--checkpoint", default=pretrained.SHIPPED_CHECKPOINT, help="WaveNet checkpoint")
  args = parser.parse_args(argv)
  for name in ("block", "steps", "sweeps", "joint_steps"):
    if getattr(args, name) < 1:
      raise InputError(f"--{name.replace('_', '-')} must be at least 1")
  cli.check_output_file(args.out, (".wav",))

  model, params, labels = pretrained.load_wavenet(args.checkpoint)
  default_content, default_style = ws.default_layers(model.num_layers)
  content_layer = parse_layers(args.content_layer, model.num_layers, "--content-layer")[0] \
      if args.content_layer else default_content
  style_layers = parse_layers(args.style_layers, model.num_layers, "--style-layers") \
      if args.style_layers else default_style
  content = load_codes(args.content, model, args.seconds, "content")
  style = load_codes(args.style, model, args.seconds, "style")
  global_ids = None
  if args.gender:
    if "gender" not in dict(model.global_categories):
      raise InputError(f"{args.checkpoint}: this WaveNet is not conditioned on gender; leave out --gender")
    global_ids = {"gender": labels["gender"].index(args.gender)}

  length = content.shape[0]
  task = ws.make_style_task(model, params, content, style, content_layer, style_layers, args.content_weight,
                            args.style_weight, args.block, args.steps, args.learning_rate, global_ids)
  problem = task.problem
  init = content if args.init == "content" else jax.random.randint(jax.random.key(args.seed), (length,), 0,
                                                                     model.num_classes)
  runs = {}
  if args.method in ("coordinate", "both"):
    runs["coordinate"] = lambda: ws.coordinate_descent(problem, params, init, sweeps=args.sweeps)
  if args.method in ("joint", "both"):
    runs["joint"] = lambda: ws.joint_relaxation(problem, params, steps=args.joint_steps)
  report = {"content": args.content, "style": args.style, "content_layer": content_layer,
            "style_layers": list(style_layers), "samples": length, "methods": {}}
  traces = {}
  for method, run in runs.items():
    print(f"{method}: optimising {length} samples ...", flush=True)
    tic = time.perf_counter()
    decoded = jax.block_until_ready(run())
    seconds = time.perf_counter() - tic
    losses = ws.task_losses(task, params, decoded.codes)
    report["methods"][method] = dict(losses, seconds_including_compile=seconds)
    traces[method] = np.asarray(decoded.loss_trace)
    path = args.out if method == "coordinate" or args.method != "both" else args.out[:-4] + f"_{method}.wav"
    audio = dsp.dequantize(np.asarray(decoded.codes), model.num_classes - 1)
    dsp.save_audio(path, audio, SAMPLE_RATE)
    dsp.save_spectrogram_png(path[:-4] + ".png", audio, SAMPLE_RATE, f"{method}: content {losses['content']:.3g}, "
                             f"style {losses['style']:.3g}")
    print(f"  wrote {path}: content loss {losses['content']:.4g}, style loss {losses['style']:.4g}, "
          f"{seconds:.1f} s")
  report["start"] = ws.task_losses(task, params, init)
  figure, axis = figures.pyplot().subplots(figsize=(7, 3.5))
  for method, trace in traces.items():
    axis.plot(np.linspace(0, 1, len(trace)), trace, label=method)
  axis.set_yscale("log")
  axis.set_xlabel("fraction of the optimisation (blocks or steps)")
  axis.set_ylabel("relaxed objective")
  axis.legend()
  figures.save_figure(figure, args.out[:-4] + "_losses.png")
  save_json(args.out[:-4] + ".json", report)


if __name__ == "__main__":
  cli.run(main)
