"""Conditional WaveNet: model, likelihood, training and sampling."""

from wavenet.model import WaveNet, WaveNetOutput, build_model
