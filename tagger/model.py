"""The tagger: a frontend, a convolutional (or recurrent) body, one sigmoid per tag.

Frontends (`frontend`):
  raw     a strided convolution over raw samples (a learned filterbank,
          `filter_length` taps every `filter_stride` samples, `frontend_channels`
          filters), max-pooled over time to one frame every `hop` samples (with
          `filter_stride` < `hop` the pooled output tracks each filter's envelope
          whatever its phase, as in Sainath et al., "Learning the speech front-end
          with raw waveform CLDNNs", 2015), and with `log_power` compressed to
          log(1e-5 + output^2) like the log-mel frames,
  logmel  log-mel spectrogram frames (`n_fft`, `hop`, `frontend_channels` mel bands),
  lstm    log-mel frames read by an LSTM (a sequence classifier, no convolutions).
raw and logmel feed the same body (Dieleman & Schrauwen, "End-to-end learning
for music audio", 2014): per stage a convolution over frames, layer norm,
ReLU and max-pooling by `pool` (not after the last stage); then mean and max
over time, a dense ReLU layer and one logit per tag. With `train=True`, dropout
of rate `dropout` is applied to the pooled features and to the dense layer's
output (the PRNG stream "dropout").

Activations (`return_activations=True`), each [batch, frames, channels] float32:
  "frontend": the frontend's frames after layer norm,
  "stage0", "stage1", ...: each convolution stage after ReLU, before pooling
  ("stage0" is the LSTM's output sequence for the lstm frontend).
"""

import flax.linen as nn
import jax.numpy as jnp

from common.errors import InputError
from dsp import spectral

FRONTENDS = ("raw", "logmel", "lstm")


class Tagger(nn.Module):
  """Multi-label tagger of [batch, n_samples] float32 audio in [-1, 1] at `sample_rate` Hz."""

  num_tags: int
  frontend: str = "raw"
  sample_rate: int = 16000
  hop: int = 128
  filter_length: int = 512
  filter_stride: int | None = None  # None: hop (one filterbank output per frame, no pooling)
  n_fft: int = 512
  frontend_channels: int = 64
  stage_channels: tuple = (64, 96, 128)
  stage_kernel: int = 8
  pool: int = 4
  lstm_channels: int = 128
  lstm_pool: int = 2
  dense_channels: int = 256
  dropout: float = 0.0
  log_power: bool = False

  def frames(self, audio):
    """[batch, n] -> [batch, frames, frontend_channels] normalised frontend frames."""
    if self.frontend == "raw":
      stride = self.filter_stride or self.hop
      if self.hop % stride:
        raise InputError(f"filter_stride {stride} must divide hop {self.hop}")
      frames = nn.Conv(self.frontend_channels, (self.filter_length,), strides=(stride,), padding="VALID",
                       name="filterbank")(audio[..., None])
      if stride < self.hop:
        frames = nn.max_pool(frames, (self.hop // stride,), strides=(self.hop // stride,))
      if self.log_power:
        frames = jnp.log(spectral.LOG_EPS + jnp.square(frames))
    else:
      frames = spectral.log_mel(audio, self.sample_rate, self.n_fft, self.hop, self.frontend_channels, spectral.LOG_EPS)
    return nn.LayerNorm(name="frontend_norm")(frames)

  @nn.compact
  def __call__(self, audio, return_activations=False, train=False):
    """Tag logits of `audio: [batch, n_samples]`.

    Args:
      audio: [batch, n_samples] float32 in [-1, 1].
      return_activations: also return the named activations.
      train: apply dropout (needs `rngs={"dropout": key}`); False is deterministic.

    Returns:
      logits: [batch, num_tags] float32 (sigmoid gives each tag's probability);
      with `return_activations`, (logits, {name: [batch, frames, channels]}).
    """
    if self.frontend not in FRONTENDS:
      raise InputError(f"unknown frontend {self.frontend!r}; choose one of {', '.join(FRONTENDS)}")
    if audio.shape[-1] < self.min_samples():
      raise InputError(f"{audio.shape[-1]} samples is shorter than this tagger's shortest input, "
                       f"{self.min_samples()} samples ({self.min_samples() / self.sample_rate:.3f} s); give longer audio")
    x = self.frames(audio)
    activations = {"frontend": x}
    if self.frontend == "lstm":
      x = nn.max_pool(x, (self.lstm_pool,), strides=(self.lstm_pool,))
      x = nn.RNN(nn.OptimizedLSTMCell(self.lstm_channels), name="lstm")(x)
      activations["stage0"] = x
      pooled = jnp.concatenate([x.mean(axis=1), x[:, -1]], axis=-1)
    else:
      for stage, channels in enumerate(self.stage_channels):
        x = nn.Conv(channels, (self.stage_kernel,), padding="SAME", name=f"conv{stage}")(x)
        x = nn.relu(nn.LayerNorm(name=f"norm{stage}")(x))
        activations[f"stage{stage}"] = x
        if stage < len(self.stage_channels) - 1:
          x = nn.max_pool(x, (self.pool,), strides=(self.pool,))
      pooled = jnp.concatenate([x.mean(axis=1), x.max(axis=1)], axis=-1)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    hidden = nn.relu(nn.Dense(self.dense_channels, name="dense")(pooled))
    hidden = nn.Dropout(self.dropout, deterministic=not train)(hidden)
    logits = nn.Dense(self.num_tags, name="logits")(hidden)
    return (logits, activations) if return_activations else logits

  def min_samples(self):
    """The shortest input in samples: it leaves the last stage (or the LSTM) one frame."""
    frames = self.lstm_pool if self.frontend == "lstm" else self.pool ** (len(self.stage_channels) - 1)
    if self.frontend == "raw":
      stride = self.filter_stride or self.hop
      return self.filter_length + (frames * (self.hop // stride) - 1) * stride
    return (frames - 1) * self.hop  # log-mel frames are centred: 1 + n_samples // hop of them

  def layer_names(self):
    """The activation names this tagger returns, shallow to deep."""
    stages = 1 if self.frontend == "lstm" else len(self.stage_channels)
    return ("frontend",) + tuple(f"stage{stage}" for stage in range(stages))


def build_model(config, num_tags=None):
  """A `Tagger` from a model config (ConfigDict or dict) with the fields of `Tagger`.

  Args:
    config: the fields; `num_tags` may be left out and given as the argument.

  Raises:
    InputError: an unknown frontend.
  """
  fields = dict(config)
  if num_tags is not None:
    fields["num_tags"] = num_tags
  if fields.get("frontend") not in FRONTENDS:
    raise InputError(f"unknown frontend {fields.get('frontend')!r}; choose one of {', '.join(FRONTENDS)}")
  if "stage_channels" in fields:
    fields["stage_channels"] = tuple(fields["stage_channels"])
  return Tagger(**fields)
