"""Evaluation of frame-rate VLAEs: the validation ELBO, and linear probes of z on voices it never heard.

The probes ask what the global latent carries, with two baselines beside
each model so that a probe can fail: the same encoder at random parameters
(its output layer drawn like the others, since training starts it at zero),
and the clip's mean log-mel, which already separates these synthetic voices.
Each probe is fit on the validation split (the 14 training speakers'
utterances no training step saw) and scored on "unheard voices": the
heldout_speakers split and utterances of the engine variants in no split
(`corpora.voices.roster.UNSEEN_VARIANTS`), rendered here.

  pitch: ridge regression of each utterance's median log-F0 (Praat, voiced
    frames) from the representation, R^2 on the unheard voices;
  gender: logistic regression, accuracy on the unheard voices;
  speaker: logistic regression over the 14 training speakers, 5-fold
    cross-validated accuracy on the validation split.
"""

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np

import corpora
from corpora.schema import SAMPLE_RATE
from corpora.voices import render, roster
from dsp import frames as frames_lib
from frameprior.train import load_frames, validation_windows
from vlae import probe

MIN_VOICED_FRAMES = 20  # utterances with fewer voiced frames have no median F0 worth probing
UNSEEN_SENTENCE_SEED = 11  # sentences of the unseen variants' probe utterances (not the corpus's)
VALIDATION_SEED = 0  # the validation windows and the ELBO's PRNG key


@dataclasses.dataclass(frozen=True)
class Utterances:
  """A set of utterances for probing.

  features: n `dsp.frames.FrameFeatures`.
  gender: [n] int gender ids (`corpora.gender_names()`).
  speaker: [n] int speaker ids (within the set).
  median_log_f0: [n] float median log-F0 (log Hz) over voiced frames.
  """
  features: list
  gender: np.ndarray
  speaker: np.ndarray
  median_log_f0: np.ndarray


def _utterances(features, gender, speaker):
  """Utterances with at least MIN_VOICED_FRAMES voiced frames, and their median log-F0."""
  voiced = [f.voiced > 0.5 for f in features]
  keep = np.array([v.sum() >= MIN_VOICED_FRAMES for v in voiced])
  medians = np.array([np.median(f.log_f0[v]) if k else np.nan for f, v, k in zip(features, voiced, keep)])
  return Utterances([f for f, k in zip(features, keep) if k], np.asarray(gender)[keep], np.asarray(speaker)[keep],
                    medians[keep])


def split_utterances(data, split):
  """The Utterances of a corpus split (`data` names the corpus as a config's data block does)."""
  clips, split_frames, _ = load_frames(data, split)
  return _utterances([split_frames.clip(i) for i in range(len(clips))], clips.gender, clips.speaker)


def unseen_variant_utterances(per_voice):
  """Utterances of every `roster.UNSEEN_VARIANTS` voice, `per_voice` sentences each, rendered now."""
  clips = render.unseen_variant_clips(per_voice, UNSEEN_SENTENCE_SEED)
  voices = [voice for voice, _ in clips]
  genders = corpora.gender_names()
  return _utterances([frames_lib.frame_features(audio, SAMPLE_RATE) for _, audio in clips],
                     [genders.index(voice.gender) for voice in voices],
                     [roster.UNSEEN_VARIANTS.index(voice) for voice in voices])


def concatenate(*sets):
  """One Utterances of several (speaker ids made distinct per set)."""
  offsets = np.cumsum([0] + [int(s.speaker.max()) + 1 for s in sets[:-1]])
  return Utterances(sum((s.features for s in sets), []), np.concatenate([s.gender for s in sets]),
                    np.concatenate([s.speaker + o for s, o in zip(sets, offsets)]),
                    np.concatenate([s.median_log_f0 for s in sets]))


def mean_log_mel(utterances):
  """[n, NUM_MELS] each utterance's mean log-mel over its frames: the baseline that needs no model."""
  return np.stack([f.log_mel.mean(axis=0) for f in utterances.features])


def untrained_parameters(model, seed=0):
  """The model's initial parameters, with the encoder's zero-initialised output layer drawn at random too."""
  zeros = jnp.zeros((1, 10, model.frame_channels))
  params = model.init(jax.random.key(seed), zeros, jnp.ones((1, 10)), jax.random.key(seed))
  encoder = params["params"]["encoder"]
  output = max((name for name in encoder if name.startswith("Dense_")), key=lambda name: int(name.split("_")[1]))
  kernel = encoder[output]["kernel"]
  drawn = jax.nn.initializers.lecun_normal()(jax.random.key(seed + 1), kernel.shape)
  return {"params": dict(params["params"], encoder=dict(encoder, **{output: dict(encoder[output], kernel=drawn)}))}


def probe_scores(fit_set, fit_features, unheard, unheard_features):
  """{pitch_r2, gender_accuracy, speaker_accuracy} of one representation; see the module docstring."""
  return {"pitch_r2": probe.r2_probe(fit_features, fit_set.median_log_f0, unheard_features, unheard.median_log_f0),
          "gender_accuracy": probe.probe_accuracy(fit_features, fit_set.gender, unheard_features, unheard.gender),
          "speaker_accuracy": probe.cross_validated_accuracy(fit_features, fit_set.speaker)}


def validation_elbo(model, params, data, num_batches, batch_size, length):
  """The ELBO's terms on fixed validation windows, and how much the decoder relies on z.

  The decoder reads its input with the model's own input dropout (fixed keys),
  as it does when decoding; the KL is the plain one (no free bits). The gain
  from z compares the reconstruction at each window's posterior mean with
  that at the posterior mean of the window before it in the batch (another
  utterance): what the decoder loses when z is someone else's; zero for a
  decoder that ignores z.

  Returns:
    {negative_elbo_bits_per_frame, reconstruction_bits_per_frame,
     kl_bits_per_window, z_gain_bits_per_frame}.
  """
  loaded = load_frames(data, "validation")

  def terms(params, batch, key):
    frames, mask = batch["frames"], batch["mask"]
    out = model.apply(params, frames, mask, key, 0.0)
    mean = model.apply(params, frames, mask, method="encode")[0]
    decode = lambda z: model.apply(params, frames, mask, z, jax.random.split(key)[1], method="reconstruction")
    return out, decode(mean) - decode(jnp.roll(mean, 1, axis=0))

  terms = jax.jit(terms)
  params = jax.tree.map(jnp.asarray, params)
  reconstruction, kl, frames, gain, windows = 0.0, 0.0, 0.0, 0.0, 0
  for index, batch in enumerate(validation_windows(loaded, VALIDATION_SEED, num_batches, batch_size, length)):
    out, z_gain = terms(params, {k: jnp.asarray(batch[k]) for k in ("frames", "mask")},
                        jax.random.fold_in(jax.random.key(VALIDATION_SEED), index))
    reconstruction += float(jnp.sum(out.reconstruction))
    kl += float(jnp.sum(out.kl))
    frames += float(jnp.sum(out.frames))
    gain += float(jnp.sum(z_gain))
    windows += batch_size
  bits = 1.0 / np.log(2.0)
  return {"negative_elbo_bits_per_frame": bits * (kl - reconstruction) / frames,
          "reconstruction_bits_per_frame": -bits * reconstruction / frames,
          "kl_bits_per_window": bits * kl / windows, "z_gain_bits_per_frame": bits * gain / frames}


def corpus_of(labels, data_dir):
  """The data block (name, config, data_dir) of the corpus a checkpoint's labels name (voices/full if none)."""
  corpus = labels.get("corpus", {"name": "voices", "config": "full"})
  return types.SimpleNamespace(name=corpus["name"], config=corpus["config"], data_dir=data_dir)
