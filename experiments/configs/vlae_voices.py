"""The audio VLAE on the voices corpus: log-mel encoder, conditional WaveNet decoder.

    python -m experiments.train_vlae --config experiments/configs/vlae_voices.py:small --workdir runs/vlae_small_fb
    python -m experiments.train_vlae --config experiments/configs/vlae_voices.py:deep --workdir runs/vlae_deep_nofb \
        --config.objective.free_bits=0
    python -m experiments.train_vlae --config experiments/configs/vlae_voices.py:smoke --workdir /tmp/smoke

Variants differ in the decoder's receptive field: "small" (one stack,
dilations 1..8: 16 samples), "medium" (dilations 1..128: 256 samples), "deep"
(dilations 1..512: 1,024 samples); "smoke" is a tiny model on voices/small for
tests. The default is "small". Free bits are on (0.5 nats per latent
dimension); `--config.objective.free_bits=0` turns them off. Result (docs/vae_vlae.md): "small"
with free bits, 250 steps, gives a KL of 103 bits per clip and a 98.8% held-out gender probe
(`python -m experiments.eval_vlae --workdir runs/vlae_small_fb`); its decodes are unvoiced.
"""

import ml_collections

from experiments.configs import override_fields

LAYERS_PER_STACK = {"small": 4, "medium": 8, "deep": 10, "smoke": 2}


# The smoke variant: a tiny model and a few steps, for tests.
_SMOKE = dict(latent_features=4, local_latent_features=2, channels=8, num_layers=1, num_mels=16, residual_channels=8,
              gate_channels=8, skip_channels=16, head_channels=16, config="small", batch_size=2, crop=2048,
              eval_batches=1, kl_warmup_steps=2, num_steps=2, warmup_steps=1, log_every=1, eval_every=2,
              checkpoint_every=2)


def get_config(variant="small"):
  """Returns the ConfigDict of `variant` ("small", "medium", "deep" or "smoke")."""
  if variant not in LAYERS_PER_STACK:
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(LAYERS_PER_STACK)}")
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.latent_features = 32  # dimensions of the global latent z
  model.local_latent_features = 0  # channels of the local latent sequence; 0 = none
  model.local_hop = 1024  # samples per local latent frame (a multiple of encoder.hop)
  model.prior = "standard_normal"  # standard_normal | flow (learned autoregressive flow)
  model.flow_layers = 2  # affine autoregressive layers of the flow prior
  model.flow_hidden_features = 64  # MADE hidden width of each flow layer

  model.encoder = encoder = ml_collections.ConfigDict()
  encoder.channels = 64  # width of the convolutions over log-mel frames
  encoder.num_layers = 3  # convolutions over frames
  encoder.kernel_size = 3  # frames per convolution window
  encoder.n_fft = 1024  # STFT frame length, samples
  encoder.hop = 256  # STFT hop, samples
  encoder.num_mels = 80  # mel bands

  model.decoder = decoder = ml_collections.ConfigDict()
  decoder.num_stacks = 1  # repetitions of the dilation cycle
  decoder.layers_per_stack = LAYERS_PER_STACK[variant]  # dilations 1 .. 2**(layers_per_stack - 1)
  decoder.kernel_size = 2  # taps per dilated causal convolution
  decoder.residual_channels = 32  # width of the residual stream
  decoder.gate_channels = 32  # width of filter and gate, each
  decoder.skip_channels = 64  # width of the summed skip path
  decoder.head_channels = 64  # hidden width of the output 1x1 convolutions
  decoder.num_classes = 256  # mu-law levels of input and output
  decoder.input_kind = "one_hot"  # one_hot | embedding | scalar
  decoder.output_kind = "categorical"  # categorical (256-way softmax) | mixture (of logistics)
  decoder.num_mixtures = 10  # logistic components for output_kind == "mixture"

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 4  # windows per step (a multiple of the device count)
  data.crop = 8000  # samples encoded and predicted per window (after the decoder's context)
  data.eval_batches = 8  # validation batches per evaluation during training

  config.objective = objective = ml_collections.ConfigDict()
  objective.kl_warmup_steps = 100  # steps over which the KL weight rises from 0 to 1
  objective.free_bits = 0.5  # KL floor per latent dimension, nats (0: plain ELBO)

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 250  # optimiser steps
  train.learning_rate = 2e-3  # peak AdamW learning rate
  train.warmup_steps = 25  # linear learning-rate warm-up steps
  train.weight_decay = 0.0  # AdamW decoupled weight decay
  train.clip_norm = 1.0  # global gradient-norm clip (the loss is in nats per sample)
  train.microbatches = 1  # rows split into this many groups whose gradients are summed one after another
  train.log_every = 10  # steps between training-metric writes
  train.eval_every = 125  # steps between validation passes
  train.checkpoint_every = 50  # steps between checkpoints
  train.keep_checkpoints = 2  # checkpoints kept on disk
  train.seed = 0  # parameters, data order and PRNG keys
  if variant == "smoke":
    override_fields(config, _SMOKE)
  return config
