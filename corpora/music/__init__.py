"""The offline rendered-score corpus `music` (see `builder.py`)."""

from corpora.music.builder import FULL, SMALL, Music, MusicConfig
