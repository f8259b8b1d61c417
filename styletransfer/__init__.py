"""Style-transfer baselines: Gram matching on spectrograms (`spectrogram`), WaveNet activations (`wavenet_style`)."""
