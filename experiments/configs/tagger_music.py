"""The tagger on the rendered-score corpus `music`.

    python -m experiments.train_tagger --config experiments/configs/tagger_music.py --workdir runs/NAME
    python -m experiments.train_tagger --config experiments/configs/tagger_music.py --workdir runs/NAME \
        --config.model.frontend=logmel
    python -m experiments.train_tagger --config experiments/configs/tagger_music.py:smoke --workdir /tmp/smoke

Variants: "default" (music/full) and "smoke" (a tiny model on music/small, a
few steps, for tests). Result (docs/tagger.md): the raw frontend reaches a test ROC-AUC of
0.912 (`python -m experiments.eval_tagger --workdir runs/NAME --select-on validation`).
"""

import ml_collections

from experiments.configs import override_fields


# The smoke variant: a tiny model and a few steps, for tests.
_SMOKE = dict(frontend_channels=16, stage_channels=(8, 8), lstm_channels=8, dense_channels=16, config="small",
              batch_size=2, crop=4096, eval_length=8192, eval_batches=2, num_steps=3, warmup_steps=1, log_every=1,
              eval_every=2, checkpoint_every=2, keep_checkpoints=3)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.frontend = "raw"  # raw (strided convolution on samples) | logmel | lstm (over log-mel frames)
  model.sample_rate = 16000  # Hz of the audio
  model.hop = 128  # samples between frames: the raw filterbank's stride, the STFT hop
  model.filter_length = 512  # taps of each raw filterbank filter
  model.filter_stride = ml_collections.FieldReference(None, field_type=int)  # raw: filter output spacing; None: hop
  model.log_power = False  # raw frontend: log(1e-5 + filter output^2) instead of the linear filter output
  model.n_fft = 512  # STFT frame length of the log-mel frontends
  model.frontend_channels = 64  # raw filters or mel bands
  model.stage_channels = (64, 96, 128)  # output channels of each convolution stage
  model.stage_kernel = 8  # frames per stage convolution
  model.pool = 4  # max-pooling factor between stages
  model.lstm_channels = 128  # LSTM state width (lstm frontend)
  model.lstm_pool = 2  # frames max-pooled before the LSTM
  model.dense_channels = 256  # hidden units before the logits
  model.dropout = 0.0  # dropout rate on the pooled features and the dense layer in training

  config.data = data = ml_collections.ConfigDict()
  data.name = "music"  # tagged corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 16  # clips per step (a multiple of the device count)
  data.crop = 32000  # samples per training crop (2 s)
  data.flip_polarity = False  # negate each training crop with probability 1/2
  data.eval_length = 64000  # samples per evaluation window (a whole 4 s clip)
  data.eval_batches = 12  # validation batches per evaluation

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 16000  # optimiser steps
  train.learning_rate = 1e-3  # peak AdamW learning rate
  train.warmup_steps = 100  # linear warm-up steps
  train.weight_decay = 1e-4  # AdamW decoupled weight decay (times the learning rate)
  train.clip_norm = 1.0  # global gradient-norm clip
  train.microbatches = 1  # rows split into this many groups whose gradients are summed one after another
  train.log_every = 50  # steps between training-metric writes
  train.eval_every = 500  # steps between validation passes
  train.checkpoint_every = 1000  # steps between checkpoints
  train.keep_checkpoints = 10  # checkpoints kept on disk (for selection on validation)
  train.seed = 0  # parameters, data order and PRNG keys
  if variant == "smoke":
    override_fields(config, _SMOKE)
  return config
