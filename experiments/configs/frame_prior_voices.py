"""The frame prior (a GRU over vocoder frame vectors, by speaker and gender) on the voices corpus.

    python -m experiments.train_frame_prior --config experiments/configs/frame_prior_voices.py --workdir runs/frame_prior
    python -m experiments.train_frame_prior --config experiments/configs/frame_prior_voices.py:smoke --workdir /tmp/smoke

Variants: "default" (voices/full) and "smoke" (a tiny GRU on voices/small, a
few steps, for tests). Result (docs/garble.md): at 3,000 steps (1,537 s on 2 shared cores) -23.7 bits
per validation frame; `sample_garble --gender both --num 10 --seconds 4 --seed 0` then gives male
medians 92-112 Hz (10 of 10) and female 192-270 Hz (9 of 10 in 165-255 Hz), all voiced.
"""

import ml_collections

from experiments.configs import FRAME_CHANNELS, VOICES_SPEAKERS, override_fields


_SMOKE = dict(hidden_channels=16, embedding_channels=4, batch_size=2, frames=20, eval_batches=1, num_steps=2,
              warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  num_speakers = VOICES_SPEAKERS["small" if variant == "smoke" else "full"]
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.frame_channels = FRAME_CHANNELS  # vocoder.features.LOCAL_CHANNELS
  model.hidden_channels = 256  # GRU state width
  model.num_speakers = num_speakers  # speaker ids of the corpus
  model.num_genders = 2  # female, male
  model.embedding_channels = 32  # width of the speaker and gender embeddings
  model.architecture = "frame_prior"  # frameprior.model.FramePrior

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 32  # windows per step
  data.frames = 200  # frames per window (2 s)
  data.eval_batches = 10  # validation batches per evaluation
  data.speaker_dropout = 0.25  # share of windows with the speaker absent (so gender alone conditions)
  data.input_noise = 0.1  # std of the Gaussian noise on the input frames (robust free-running sampling)

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 3000  # optimiser steps
  train.learning_rate = 2e-3  # peak AdamW learning rate
  train.warmup_steps = 100  # linear warm-up steps
  train.weight_decay = 0.0  # AdamW decoupled weight decay
  train.clip_norm = 1.0  # global gradient-norm clip
  train.microbatches = 1  # rows split into this many groups whose gradients are summed one after another
  train.log_every = 50  # steps between training-metric writes
  train.eval_every = 250  # steps between validation passes
  train.checkpoint_every = 250  # steps between checkpoints
  train.keep_checkpoints = 3  # checkpoints kept on disk
  train.seed = 0  # parameters, data order and PRNG keys

  if variant == "smoke":
    data.config = "small"
    override_fields(config, _SMOKE)
  return config
