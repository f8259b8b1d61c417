"""The offline synthetic speech corpus `voices` (see `builder.py`)."""

from corpora.voices.builder import FULL, SMALL, Voices, VoicesConfig
