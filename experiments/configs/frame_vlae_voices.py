"""The frame-rate VLAE (a global z decoded by a short-sighted frame prior) on the voices corpus.

    python -m experiments.train_frame_vlae --config experiments/configs/frame_vlae_voices.py --workdir runs/frame_vlae
    python -m experiments.train_frame_vlae --config experiments/configs/frame_vlae_voices.py:smoke --workdir /tmp/smoke

Variants: "default" (voices/full) and "smoke" (tiny, voices/small, a few
steps, for tests). Expected result (the shipped models/frame_vlae, 2,500
steps, about 26 min on 2 cores): `eval_frame_vlae` gives a KL of 83 bits per
3 s window, 36 bits per frame gained from z, pitch R^2 0.99 on unheard
voices; `benchmarks.bench_frame_vlae_interpolation` gives 10 of 10 paths
voiced and rising (Spearman 1.00), both ends within 15% on 8 of 10. More in
docs/vae_vlae.md.
"""

import ml_collections

from experiments.configs import FRAME_CHANNELS, override_fields


_SMOKE = dict(latent_channels=2, encoder_channels=8, hidden_channels=8, embedding_channels=4, batch_size=2,
              frames=20, eval_batches=1, num_steps=2, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2)


def get_config(variant="default"):
  """Returns the ConfigDict of `variant` ("default" or "smoke")."""
  if variant not in ("default", "smoke"):
    raise ValueError(f"unknown variant {variant!r}; known: default, smoke")
  config = ml_collections.ConfigDict()

  config.model = model = ml_collections.ConfigDict()
  model.frame_channels = FRAME_CHANNELS  # vocoder.features.LOCAL_CHANNELS
  model.latent_channels = 16  # Z, the global latent
  model.encoder_channels = 128  # width of the encoder's convolutions
  model.hidden_channels = 256  # GRU width of the decoder
  model.embedding_channels = 32  # width of the decoder's conditioning vector
  model.decoder_input_dropout = 0.5  # share of previous frames the decoder does not see, trained and decoded
  model.architecture = "frame_vlae"  # vlae.frame_vlae.FrameVlae

  config.data = data = ml_collections.ConfigDict()
  data.name = "voices"  # corpus, see corpora/__init__.py
  data.config = "full"  # corpus config
  data.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $ELECTRIC_BEATS_DATA or data/tfds
  data.batch_size = 32  # windows per step
  data.frames = 300  # frames per window (3 s, about one utterance)
  data.eval_batches = 10  # validation batches per evaluation
  data.free_bits = 0.25  # nats per latent dimension below which the KL is not pushed down
  data.pitch_shift_semitones = 4.0  # each training window's F0 shifted by a uniform draw in +- this; 0 = none
  data.band_limit_share = 0.0  # share of training windows with the log-mel bands above a cutoff silenced; 0 = none
  data.band_limit_hz = (3400.0, 5000.0)  # range of that cutoff in Hz (telephone band to 10 kHz sampling)

  config.train = train = ml_collections.ConfigDict()
  train.num_steps = 2500  # optimiser steps
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
