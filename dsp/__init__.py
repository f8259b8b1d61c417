"""Pure signal processing: audio I/O, mu-law, STFT/Griffin-Lim, F0, frame features, spectrogram figures."""

from dsp.audio import active_fraction, from_int16, load_audio, peak_normalize, resample, save_audio, to_int16, trim_silence
from dsp.mulaw import dequantize, mu_law_decode, mu_law_encode, quantize
from dsp.pitch import f0_track, median_f0, track_summary
from dsp.plots import save_spectrogram_png, save_spectrograms_png
from dsp.spectral import griffin_lim, istft, log_mel, mel_filterbank, spectral_convergence, stft
