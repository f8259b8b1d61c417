"""Conditional WaveNet (van den Oord et al., 2016) in Flax linen.

Each residual layer l computes, with x its input and * a dilated causal
convolution,

    z = tanh(W_f * x + V_f h + U_f c) * sigmoid(W_g * x + V_g h + U_g c)

where h is the global conditioning vector (summed embeddings of categorical ids
such as speaker and gender, and/or a continuous vector such as a VAE latent)
and c the local conditioning series upsampled to the sample rate. The layer
adds a 1x1 projection of z to its input (residual path) and feeds another to
the output (skip path).

Layout chosen for speed on CPU: filter and gate of one layer are one matmul
over the taps [x(t - (K-1)d), ..., x(t)], and the skip projections of all
layers are one matmul over the concatenated z. Each residual layer, forward
and backward, is one fused C++ kernel (`kernels.gated_residual`); given
targets, the head and its softmax likelihood are another
(`kernels.relu_mlp_log_prob`).

`padding="valid"` (training) drops, layer by layer, the outputs whose receptive
field would reach before the input: T inputs give T - receptive_field + 1
predictions. `padding="causal"` left-pads every layer with zeros and keeps all
T positions (style transfer, which needs every layer's activations at every
sample). The prediction at output position t is for the sample after input t.

`WaveNet.step` is the same network at one time step (the incremental
sampler scans it): each layer keeps a ring buffer of its last
dilation x (kernel_size - 1) inputs, all layers' buffers in one array
[B, sum of buffer lengths, residual_channels] (a `TapBuffer` layout), read by
one gather at the start of a step and written by one scatter at its end; the
past taps of all layers go through their kernels in one batched matmul. Zero
buffers are exactly the zero left-padding of `padding="causal"`, so step t
reproduces output t of the causal pass (tests/test_sampling.py holds them to it).
"""

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import kernels
from dsp import mulaw
from wavenet import mixture


class WaveNetOutput(NamedTuple):
  """What the forward pass returns.

  head: [batch, time_out, num_classes] logits, or [batch, time_out, 3M]
    mixture parameters when output_kind == "mixture"; None when a categorical
    WaveNet was given targets (its fused likelihood never forms the logits).
  activations: per residual layer, [batch, time_l, residual_channels], the
    residual stream after that layer; empty unless asked for.
  log_prob: [batch, time_out] log-probabilities of the targets in nats, or
    None when none were given.
  """
  head: jax.Array | None
  activations: tuple = ()
  log_prob: jax.Array | None = None


def _normal(fan_in):
  return nn.initializers.normal(stddev=fan_in ** -0.5)


class TapBuffer(NamedTuple):
  """Static layout of the step's shared ring buffer: layer l owns rows offsets[l] ... offsets[l] + lengths[l]."""
  lengths: np.ndarray  # [num_layers] dilation x (kernel_size - 1)
  offsets: np.ndarray  # [num_layers]
  total: int  # rows in all

  def tap_rows(self, dilations, kernel_size, t):
    """Rows [num_layers, taps - 1] holding x_l(t - (taps - 1 - j) d_l) for j < taps - 1."""
    lag = (kernel_size - 1 - jnp.arange(kernel_size - 1))[None, :] * jnp.asarray(dilations)[:, None]
    return jnp.asarray(self.offsets)[:, None] + jnp.mod(t - lag, jnp.asarray(self.lengths)[:, None])

  def write_rows(self, t):
    """Rows [num_layers] where x_l(t) is stored: it is read again at t + lengths_l."""
    return jnp.asarray(self.offsets) + jnp.mod(t, jnp.asarray(self.lengths))


class StepWeights(NamedTuple):
  """Parameters rearranged once, outside a loop of steps, so that no step slices a weight.

  XLA does not hoist slices or transposes of loop-invariant arrays out of a
  compiled loop. Indexing the stacked [num_layers, ...] kernels inside the step
  copied every layer's weights at every time step (40 copies per sample), and
  the past kernels, stored [.., R, 2 * gate], were transposed for the batched
  matmul at every step: together they halved the sampler's speed at B=1.
  """
  past_kernel: jax.Array  # [num_layers, 2 * gate_channels, (taps - 1) * R] past-tap kernels, as the matmul reads them
  current_kernels: tuple  # num_layers x [R, 2 * gate_channels] kernel of the current tap
  residual_kernels: tuple  # num_layers - 1 x [gate_channels, R]
  residual_biases: tuple  # num_layers - 1 x [R]


class WaveNet(nn.Module):
  """The network; every field is one configuration knob."""
  num_stacks: int = 2  # repetitions of the dilation cycle
  layers_per_stack: int = 10  # dilations 1, 2, ..., 2**(layers_per_stack - 1) in each stack
  kernel_size: int = 2  # taps of each dilated causal convolution (2 or 3)
  residual_channels: int = 32  # width of the residual stream
  gate_channels: int = 32  # width of the filter and of the gate, each
  skip_channels: int = 256  # width of the summed skip connections
  head_channels: int = 256  # hidden width of the two output 1x1 convolutions
  num_classes: int = 256  # mu-law levels of input and output
  input_kind: str = "one_hot"  # one_hot (codes or soft [.., num_classes] inputs) | embedding | scalar
  input_kernel_size: int = 1  # taps of the causal input convolution
  output_kind: str = "categorical"  # categorical (softmax over levels) | mixture (of logistics)
  num_mixtures: int = 10  # logistic components when output_kind == "mixture"
  global_categories: tuple = ()  # ((name, cardinality), ...): categorical ids whose embeddings add
  global_embedding_channels: int = 32  # width of those embeddings
  global_vector_channels: int = 0  # width of a continuous global vector (e.g. a latent); 0 = none
  local_channels: int = 0  # channels of the local [frames, channels] series; 0 = none
  local_hop: int = 256  # samples per local conditioning frame
  local_upsampling: str = "transposed"  # transposed (learned) | repeat
  local_upsample_strides: tuple = (16, 16)  # transposed-conv strides; their product is local_hop
  excitation_channels: int = 0  # channels of a sample-rate source added to the causal input path; 0 = none

  @property
  def dilations(self):
    return tuple(2 ** i for _ in range(self.num_stacks) for i in range(self.layers_per_stack))

  @property
  def num_layers(self):
    return self.num_stacks * self.layers_per_stack

  @property
  def receptive_field(self):
    """Samples each prediction sees: the current input and those before it."""
    return self.input_kernel_size + (self.kernel_size - 1) * sum(self.dilations)

  @property
  def head_size(self):
    return self.num_classes if self.output_kind == "categorical" else 3 * self.num_mixtures

  @property
  def global_channels(self):
    return (self.global_embedding_channels if self.global_categories else 0) + self.global_vector_channels

  @property
  def tap_buffer(self):
    """The `TapBuffer` layout of `step`'s ring buffer."""
    lengths = np.array([d * (self.kernel_size - 1) for d in self.dilations])
    return TapBuffer(lengths, np.concatenate([[0], np.cumsum(lengths)[:-1]]), int(lengths.sum()))

  def empty_buffer(self, batch):
    """The ring buffer before the first step: zero past inputs, [B, tap_buffer.total, residual_channels]."""
    return jnp.zeros((batch, self.tap_buffer.total, self.residual_channels), jnp.float32)

  def setup(self):
    num_layers, kernel = self.num_layers, self.kernel_size
    residual, gate, skip = self.residual_channels, self.gate_channels, self.skip_channels
    in_features = {"one_hot": self.num_classes, "embedding": residual, "scalar": 1}[self.input_kind]
    if self.input_kind == "embedding":
      self.embedding = self.param("embedding", _normal(1), (self.num_classes, residual))
    fan_in = self.input_kernel_size * in_features
    self.input_kernel = self.param("input_kernel", _normal(fan_in), (self.input_kernel_size, in_features, residual))
    self.input_bias = self.param("input_bias", nn.initializers.zeros, (residual,))
    self.dilated_kernel = self.param("dilated_kernel", _normal(kernel * residual), (num_layers, kernel * residual, 2 * gate))
    self.dilated_bias = self.param("dilated_bias", nn.initializers.zeros, (num_layers, 2 * gate))
    self.residual_kernel = self.param("residual_kernel", _normal(gate), (num_layers, gate, residual))
    self.residual_bias = self.param("residual_bias", nn.initializers.zeros, (num_layers, residual))
    self.skip_kernel = self.param("skip_kernel", _normal(num_layers * gate), (num_layers * gate, skip))
    self.skip_bias = self.param("skip_bias", nn.initializers.zeros, (skip,))
    self.hidden_kernel = self.param("hidden_kernel", _normal(skip), (skip, self.head_channels))
    self.hidden_bias = self.param("hidden_bias", nn.initializers.zeros, (self.head_channels,))
    self.output_kernel = self.param("output_kernel", _normal(self.head_channels), (self.head_channels, self.head_size))
    self.output_bias = self.param("output_bias", nn.initializers.zeros, (self.head_size,))
    self.global_embeddings = {
        name: self.param(f"global_embedding_{name}", _normal(1), (cardinality, self.global_embedding_channels))
        for name, cardinality in self.global_categories}
    if self.global_channels:
      self.global_kernel = self.param("global_kernel", _normal(self.global_channels), (self.global_channels, num_layers, 2 * gate))
    if self.local_channels:
      if self.local_upsampling == "transposed":
        self.upsamplers = [nn.ConvTranspose(self.local_channels, (2 * stride,), (stride,), padding="SAME", use_bias=False,
                                            name=f"local_upsample_{i}")
                           for i, stride in enumerate(self.local_upsample_strides)]
      self.local_kernel = self.param("local_kernel", _normal(self.local_channels), (num_layers, self.local_channels, 2 * gate))
    if self.excitation_channels:
      self.excitation_kernel = self.param("excitation_kernel", _normal(self.excitation_channels),
                                          (self.excitation_channels, residual))

  def head_layers(self):
    """The output head's dense layers: skip projection, hidden 1x1, output 1x1, with a ReLU between each."""
    return [(self.skip_kernel, self.skip_bias), (self.hidden_kernel, self.hidden_bias),
            (self.output_kernel, self.output_bias)]

  def head(self, gates):
    """The output head of the concatenated gated activations of every layer [..., num_layers * gate_channels]:
    skip projection, ReLU, hidden 1x1, ReLU, output 1x1 -> [..., head_size]."""
    return kernels.relu_mlp(gates, self.head_layers())

  def step_weights(self):
    """The `StepWeights` of these parameters (call once, outside the loop that calls `step`)."""
    taps, layers = self.kernel_size, self.num_layers
    kernel = self.dilated_kernel.reshape(layers, taps, self.residual_channels, 2 * self.gate_channels)
    past_kernel = jnp.transpose(kernel[:, :taps - 1], (0, 3, 1, 2)).reshape(layers, 2 * self.gate_channels, -1)
    return StepWeights(past_kernel, tuple(kernel[layer, taps - 1] for layer in range(layers)),
                       tuple(self.residual_kernel[layer] for layer in range(layers - 1)),
                       tuple(self.residual_bias[layer] for layer in range(layers - 1)))

  def step(self, weights, buffer, code, t, gate_bias, local_t=None, excitation_t=None):
    """The network at time step t: input codes [B] -> (head [B, head_size], the buffer after t).

    Args:
      weights: `step_weights()`, computed once.
      buffer: [B, tap_buffer.total, residual_channels], `empty_buffer(B)` before step 0.
      code: [B] int32 input codes at time t.
      t: [] int32 time step (selects the ring-buffer rows).
      gate_bias: [B, num_layers, 2 * gate_channels] the dilated bias plus V h (global conditioning, once).
      local_t: [B, local_channels] upsampled local conditioning at t, or None.
      excitation_t: [B, excitation_channels] the source at the sample predicted at t, or None.

    Step t equals position t of `__call__(..., padding="causal")`; only input_kernel_size 1.
    """
    plan = self.tap_buffer
    past = buffer[:, plan.tap_rows(self.dilations, self.kernel_size, t)].reshape(buffer.shape[0], self.num_layers, -1)
    pre_all = gate_bias + jnp.einsum("blk,lck->blc", past, weights.past_kernel)  # [B, L, 2 * gate] of past taps
    if local_t is not None:
      pre_all = pre_all + jnp.einsum("bc,lcg->blg", local_t, self.local_kernel)
    x = self.input_step(code)
    if excitation_t is not None:
      x = x + excitation_t @ self.excitation_kernel
    inputs, gates = [], []
    for layer in range(self.num_layers):
      inputs.append(x)
      z = kernels.gated(pre_all[:, layer] + x @ weights.current_kernels[layer])
      gates.append(z)
      if layer < self.num_layers - 1:
        x = x + z @ weights.residual_kernels[layer] + weights.residual_biases[layer]
    buffer = buffer.at[:, plan.write_rows(t)].set(jnp.stack(inputs, axis=1))
    return self.head(jnp.concatenate(gates, axis=-1)), buffer

  def input_step(self, code):
    """The input projection of codes [B] at one time step (input_kernel_size 1): -> [B, residual_channels]."""
    kernel = self.input_kernel[0]
    if self.input_kind == "one_hot":
      return kernel[code] + self.input_bias
    if self.input_kind == "embedding":
      return self.embedding[code] @ kernel + self.input_bias
    return mulaw.companded_value(code, self.num_classes - 1)[:, None] * kernel[0] + self.input_bias

  def input_features(self, inputs):
    """Codes [B, T] int (or soft one-hot [B, T, num_classes]) -> [B, T, in_features]."""
    if inputs.ndim == 3:
      if self.input_kind != "one_hot":
        raise ValueError("soft inputs [B, T, num_classes] need input_kind='one_hot'")
      return inputs
    if self.input_kind == "one_hot":
      return jax.nn.one_hot(inputs, self.num_classes, dtype=jnp.float32)
    if self.input_kind == "embedding":
      return self.embedding[inputs]
    return mulaw.companded_value(inputs, self.num_classes - 1)[..., None]

  def input_projection(self, inputs, causal):
    """Causal input convolution: [B, T] codes or [B, T, num_classes] -> [B, T', residual_channels].

    For integer codes and one-hot input, each tap is a row lookup (the same
    product as one-hot times kernel, without the one-hot matrix).
    """
    if inputs.ndim == 2 and self.input_kind == "one_hot":
      taps, length = self.input_kernel.shape[0], inputs.shape[1]
      span = taps - 1
      rows = [self.input_kernel[j][inputs] for j in range(taps)]  # Tap j sees x(t - span + j).
      if causal:
        x = sum(jnp.pad(row, ((0, 0), (span - j, 0), (0, 0)))[:, :length] for j, row in enumerate(rows))
      else:
        x = sum(row[:, j:j + length - span] for j, row in enumerate(rows))
    else:
      x = _causal_conv(self.input_features(inputs), self.input_kernel, 1, causal)
    return x + self.input_bias

  def global_bias(self, batch, global_ids=None, global_vector=None):
    """Per-layer gate bias V h: [batch, num_layers, 2 * gate_channels], or None.

    Args:
      batch: batch size B.
      global_ids: {name: [B] int32} for names in `global_categories`; a name
        left out, or an id of -1, contributes a zero embedding.
      global_vector: [B, global_vector_channels] float32, or None for zeros.
    """
    if not self.global_channels:
      return None
    unknown = set(global_ids or {}) - set(self.global_embeddings)
    if unknown:
      raise ValueError(f"unknown global conditioning {sorted(unknown)}; known: {sorted(self.global_embeddings)}")
    parts = []
    if self.global_categories:
      embedded = jnp.zeros((batch, self.global_embedding_channels), jnp.float32)
      for name, ids in (global_ids or {}).items():
        present = (ids >= 0)[:, None]  # Id -1: this condition is absent (a zero embedding).
        embedded = embedded + jnp.where(present, self.global_embeddings[name][jnp.maximum(ids, 0)], 0.0)
      parts.append(embedded)
    if self.global_vector_channels:
      vector = jnp.zeros((batch, self.global_vector_channels), jnp.float32) if global_vector is None else global_vector
      parts.append(vector)
    return jnp.einsum("bh,hlc->blc", jnp.concatenate(parts, axis=-1), self.global_kernel)

  def upsample_local(self, local):
    """Local series [B, frames, local_channels] -> [B, frames * local_hop, local_channels]."""
    if self.local_upsampling == "repeat":
      return jnp.repeat(local, self.local_hop, axis=1)
    upsampled = local
    for i, upsampler in enumerate(self.upsamplers):
      upsampled = upsampler(upsampled)
      if i < len(self.upsamplers) - 1:
        upsampled = nn.leaky_relu(upsampled, 0.4)
    return upsampled

  def local_bias_source(self, local, length):
    """Upsampled local conditioning cropped to the input length: [B, length, C] or None."""
    if local is None or not self.local_channels:
      return None
    upsampled = self.upsample_local(local)
    if upsampled.shape[1] < length:
      raise ValueError(f"local conditioning covers {upsampled.shape[1]} samples, inputs have {length}")
    return upsampled[:, :length]

  def __call__(self, inputs, global_ids=None, global_vector=None, local=None, padding="valid",
               return_activations=False, excitation=None, targets=None):
    """Teacher-forced forward pass.

    Args:
      inputs: [B, T] int32 mu-law codes, or [B, T, num_classes] soft one-hot.
      global_ids: {name: [B] int32} categorical global conditioning.
      global_vector: [B, global_vector_channels] float32.
      local: [B, frames, local_channels] float32 with frames * local_hop >= T,
        aligned so that frame f covers inputs f * hop ... (f + 1) * hop - 1.
      padding: "valid" -> T - receptive_field + 1 outputs; "causal" -> T.
      return_activations: also return every layer's residual stream.
      excitation: [B, T, excitation_channels] float32 source signal;
        excitation[:, i] belongs to the sample predicted at position i (the
        one after input i), and joins the input projection there, so every
        dilated convolution sees the source's recent past and present.
      targets: [B, time_out] int32 codes whose log-probabilities to return,
        head[:, i]'s target at i.

    Returns:
      WaveNetOutput; head[:, i] predicts the sample after the input at
      position i + receptive_field - 1 ("valid") or i ("causal").
    """
    batch, length = inputs.shape[:2]
    causal = padding == "causal"
    global_bias = self.global_bias(batch, global_ids, global_vector)
    local_source = self.local_bias_source(local, length)

    x = self.input_projection(inputs, causal)
    if self.excitation_channels:
      if excitation is None:
        raise ValueError(f"this WaveNet needs an excitation [B, T, {self.excitation_channels}]")
      x = x + kernels.dense(excitation[:, excitation.shape[1] - x.shape[1]:], self.excitation_kernel)
    gates, activations = [], []
    for layer, dilation in enumerate(self.dilations):
      span = (self.kernel_size - 1) * dilation
      if causal and span:
        x = jnp.pad(x, ((0, 0), (span, 0), (0, 0)))
      bias = self.dilated_bias[layer]
      if global_bias is not None:
        bias = bias + global_bias[:, None, layer]
      if local_source is not None:
        bias = bias + kernels.dense(local_source[:, length - (x.shape[1] - span):], self.local_kernel[layer])
      z, x = kernels.gated_residual(x, self.dilated_kernel[layer], bias, self.residual_kernel[layer],
                                    self.residual_bias[layer], dilation)
      gates.append(z)
      activations.append(x)
    time_out = gates[-1].shape[1]
    gates = jnp.concatenate([z[:, z.shape[1] - time_out:] for z in gates], axis=-1)
    activations = tuple(activations) if return_activations else ()
    if targets is None:
      return WaveNetOutput(self.head(gates), activations)
    if targets.shape != (batch, time_out):
      raise ValueError(f"targets are {targets.shape}, the outputs [{batch}, {time_out}]")
    if self.output_kind == "mixture":
      head = self.head(gates)
      return WaveNetOutput(head, activations, mixture.log_prob(head, targets, self.num_classes))
    return WaveNetOutput(None, activations, kernels.relu_mlp_log_prob(gates, self.head_layers(), targets))


def _causal_conv(x, kernel, dilation, causal):
  """Dilated causal conv of x [B, T, C_in] with kernel [taps, C_in, C_out], tap j on x(t - (taps - 1 - j) * dilation).

  causal: left-pad so the output has T positions; else T - (taps - 1) * dilation.
  """
  span = (kernel.shape[0] - 1) * dilation
  if causal and span:
    x = jnp.pad(x, ((0, 0), (span, 0), (0, 0)))
  return kernels.dilated_conv(x, kernel.reshape(-1, kernel.shape[-1]), dilation)


def build_model(model_config):
  """A WaveNet from a dict of its fields (a ConfigDict, or JSON read back from a checkpoint)."""
  fields = dict(model_config)
  for name in ("global_categories", "local_upsample_strides"):
    if name in fields:
      fields[name] = tuple(tuple(item) if isinstance(item, (list, tuple)) else item for item in fields[name])
  return WaveNet(**fields)
