"""WaveNet on the voices corpus, conditioned on speaker and gender.

    python -m experiments.train_wavenet --config experiments/configs/wavenet_voices.py --workdir runs/NAME
    python -m experiments.train_wavenet --config experiments/configs/wavenet_voices.py:smoke --workdir /tmp/smoke

Variants: "default" (the standard 2 x 10-layer model on voices/full) and
"smoke" (a tiny model on voices/small, a few steps, for tests). Result (docs/wavenet.md): the
shipped models/wavenet_voices, 26,500 steps (about 10.5 h), 3.936 bits per validation sample
(`python -m experiments.eval_wavenet`); its garble is unvoiced for male voices.
"""

import ml_collections

from experiments.configs import VOICES_SPEAKERS, override_fields


# The smoke variant: a tiny model and a few steps, for tests.
_SMOKE = dict(config="small", global_categories=(("speaker", VOICES_SPEAKERS["small"]), ("gender", 2)), num_stacks=1,
              layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=16, head_channels=16,
              global_embedding_channels=8, batch_size=2, crop=64, eval_batches=2, num_steps=3, warmup_steps=1,
              log_every=1, eval_every=2, checkpoint_every=2, microbatches=2)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.num_stacks = 2  # repetitions of the dilation cycle
  model.layers_per_stack = 10  # dilations 1 .. 2**(layers_per_stack - 1)
  model.kernel_size = 2  # taps per dilated causal convolution
  model.residual_channels = 32  # width of the residual stream
  model.gate_channels = 32  # width of filter and gate, each
  model.skip_channels = 256  # width of the summed skip path
  model.head_channels = 256  # hidden width of the output 1x1 convolutions
  model.num_classes = 256  # mu-law levels
  model.input_kind = "one_hot"  # one_hot | embedding | scalar
  model.input_kernel_size = 1  # taps of the causal input convolution
  model.output_kind = "categorical"  # categorical | mixture
  model.num_mixtures = 10  # logistic components for output_kind == "mixture"
  model.global_categories = (("speaker", VOICES_SPEAKERS["full"]), ("gender", 2))  # embeddings that add
  model.global_embedding_channels = 32  # width of each global embedding
  model.global_vector_channels = 0  # no continuous global vector
  model.local_channels = 0  # no local conditioning
  model.local_hop = 256  # samples per local frame (unused here)
  model.local_upsampling = "transposed"  # transposed | repeat (unused here)
  model.local_upsample_strides = (16, 16)  # product == local_hop (unused here)

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 4  # windows per step (a multiple of the device count)
  data.crop = 4000  # predicted samples per window (after receptive_field of context)
  data.eval_batches = 25  # validation batches per evaluation
  data.speaker_dropout = 0.25  # share of windows trained with the speaker absent (gender only)

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 20_000  # optimiser steps
  train.learning_rate = 1e-3  # peak AdamW learning rate
  train.warmup_steps = 500  # linear warm-up steps
  train.weight_decay = 0.0  # AdamW decoupled weight decay
  train.clip_norm = 1.0  # global gradient-norm clip
  train.microbatches = 1  # rows split into this many groups whose gradients are summed one after another
  train.log_every = 50  # steps between training-metric writes
  train.eval_every = 1000  # steps between validation passes
  train.checkpoint_every = 250  # steps between checkpoints
  train.keep_checkpoints = 3  # checkpoints kept on disk
  train.seed = 0  # parameters, data order and PRNG keys
  if variant == "smoke":
    override_fields(config, _SMOKE)
  return config
