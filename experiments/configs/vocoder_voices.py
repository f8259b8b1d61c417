"""WaveNet vocoder on the voices corpus: frame features and a pitch source in, waveform out.

    python -m experiments.train_vocoder --config experiments/configs/vocoder_voices.py --workdir runs/vocoder
    python -m experiments.train_vocoder --config experiments/configs/vocoder_voices.py:smoke --workdir /tmp/smoke

Variants: "default" (a 10-layer WaveNet on voices/full) and "smoke" (a tiny
model on voices/small, a few steps, for tests). Result (docs/vocoder.md): at step 1,882 (748 s)
4.94 bits per validation sample teacher-forced, but free-running copy synthesis stays unvoiced
(`eval_vocoder --checkpoint runs/vocoder --sets heldout`: V/UV error 81%).
"""

import ml_collections

from experiments.configs import EXCITATION_CHANNELS, FRAME_CHANNELS, VOICES_SPEAKERS, override_fields


_SMOKE = dict(layers_per_stack=3, residual_channels=8, gate_channels=8, skip_channels=16, head_channels=16,
              global_embedding_channels=8, batch_size=2, crop=64, eval_batches=1, monitor_clips=1,
              monitor_seconds=0.1, num_steps=2, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2,
              microbatches=2)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  num_speakers = VOICES_SPEAKERS["small" if variant == "smoke" else "full"]
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.num_stacks = 1  # repetitions of the dilation cycle
  model.layers_per_stack = 10  # dilations 1 .. 512: a receptive field of 1,024 samples (64 ms)
  model.kernel_size = 2  # taps per dilated causal convolution
  model.residual_channels = 32  # width of the residual stream
  model.gate_channels = 32  # width of filter and gate, each
  model.skip_channels = 128  # width of the summed skip path
  model.head_channels = 128  # hidden width of the output 1x1 convolutions
  model.num_classes = 256  # mu-law levels
  model.input_kind = "one_hot"  # one_hot | embedding | scalar
  model.input_kernel_size = 1  # taps of the causal input convolution
  model.output_kind = "categorical"  # categorical | mixture
  model.num_mixtures = 10  # logistic components (unused with categorical)
  model.global_categories = (("speaker", num_speakers),)  # speaker embedding; -1 = an unseen voice
  model.global_embedding_channels = 16  # width of the speaker embedding
  model.global_vector_channels = 0  # no continuous global vector
  model.local_channels = FRAME_CHANNELS  # vocoder.features.LOCAL_CHANNELS: log-F0, voicing, energy, log-mel
  model.local_hop = 1  # the frame vectors arrive already interpolated to the sample rate
  model.local_upsampling = "repeat"  # (hop 1: no upsampling)
  model.local_upsample_strides = (1,)  # unused with repeat
  model.excitation_channels = EXCITATION_CHANNELS  # the source at F0, through the causal input path

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 4  # windows per step
  data.crop = 2000  # predicted samples per window (after receptive_field of context)
  data.eval_batches = 10  # validation batches per evaluation
  data.speaker_dropout = 0.25  # share of windows with the speaker absent (so unseen voices work)
  data.input_noise_levels = 1.0  # std of the noise added to input codes, in mu-law levels; 0 = none
  data.monitor_clips = 2  # clips per set (validation, held-out speakers) synthesised free-running at each eval
  data.monitor_seconds = 1.0  # seconds synthesised of each

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 6000  # optimiser steps
  train.learning_rate = 1e-3  # peak AdamW learning rate
  train.warmup_steps = 200  # linear warm-up steps
  train.weight_decay = 0.0  # AdamW decoupled weight decay
  train.clip_norm = 1.0  # global gradient-norm clip
  train.microbatches = 1  # rows split into this many groups whose gradients are summed one after another
  train.log_every = 50  # steps between training-metric writes
  train.eval_every = 500  # steps between validation passes (and free-running checks)
  train.checkpoint_every = 250  # steps between checkpoints
  train.keep_checkpoints = 3  # checkpoints kept on disk
  train.seed = 0  # parameters, data order and PRNG keys

  if variant == "smoke":
    data.config = "small"
    override_fields(config, _SMOKE)
  return config
