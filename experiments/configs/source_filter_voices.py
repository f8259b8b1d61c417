"""The non-autoregressive source-filter vocoder (the NSF baseline) on the voices corpus.

    python -m experiments.train_vocoder --config experiments/configs/source_filter_voices.py --workdir runs/source_filter
    python -m experiments.train_vocoder --config experiments/configs/source_filter_voices.py:smoke --workdir /tmp/smoke

Variants: "default" (voices/full) and "smoke" (a tiny network on voices/small,
a few steps, for tests). Result (docs/vocoder.md): at step 2,010 (2,342 s on 2 shared cores)
`python -m experiments.eval_vocoder --checkpoint runs/source_filter --per-speaker 3` gives a V/UV
error of 4.9% and a gross pitch error of 0.2% on the held-out speakers.
"""

import ml_collections

from experiments.configs import override_fields

_SMOKE = dict(channels=8, num_blocks=1, layers_per_block=3, num_harmonics=4, batch_size=2, crop=800, eval_batches=1,
              monitor_clips=1, monitor_seconds=0.1, num_steps=2, warmup_steps=1, log_every=1, eval_every=2,
              checkpoint_every=2)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.architecture = "source_filter"  # vocoder.source_filter.SourceFilter
  model.channels = 32  # width of the filter network
  model.num_blocks = 2  # repetitions of the dilation cycle
  model.layers_per_block = 8  # dilations 1 .. 128 per block: a receptive field of 2 x 2 x 255 + 1 samples
  model.kernel_size = 3  # taps per centred dilated convolution
  model.num_harmonics = 16  # harmonics of F0 in the source
  model.harmonic_amplitude = 0.1  # amplitude of each harmonic
  model.noise_std = 0.03  # std of the source's noise

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 4  # windows per step
  data.crop = 8000  # samples per window (0.5 s)
  data.eval_batches = 10  # validation batches per evaluation
  data.monitor_clips = 2  # clips per set (validation, held-out speakers) synthesised at each eval
  data.monitor_seconds = 1.0  # seconds synthesised of each

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 4000  # optimiser steps
  train.learning_rate = 1e-3  # peak AdamW learning rate
  train.warmup_steps = 200  # linear warm-up steps
  train.weight_decay = 0.0  # AdamW decoupled weight decay
  train.clip_norm = 1.0  # global gradient-norm clip
  train.microbatches = 1  # keep 1: the spectral convergence is a ratio over the whole batch, not a mean over rows
  train.log_every = 50  # steps between training-metric writes
  train.eval_every = 500  # steps between validation passes (and synthesis checks)
  train.checkpoint_every = 250  # steps between checkpoints
  train.keep_checkpoints = 3  # checkpoints kept on disk
  train.seed = 0  # parameters, data order and PRNG keys

  if variant == "smoke":
    data.config = "small"
    override_fields(config, _SMOKE)
  return config
