"""Synthesis plus post-processing: sentences in, 16 kHz int16 utterances out.

`render_all` spreads the work over spawned worker processes; each worker
handles one speaker's chunk of sentences at a time.
"""

import contextlib
import dataclasses
import multiprocessing
import tempfile

import numpy as np
import tqdm

import dsp
from corpora import schema
from corpora.voices import engines, roster
from corpora.voices import sentences as sentence_lib

# F0 is measured at 8 kHz: pYIN's default 256-sample hop is then 32 ms, half
# the cost of 16 kHz and ample for a median over a whole utterance.
_F0_SAMPLE_RATE = 8000
_CHUNK = 24


@dataclasses.dataclass(frozen=True)
class Utterance:
  """One rendered sentence.

  Attributes:
    speaker: the `roster.Speaker`.
    index: the sentence number, shared by all speakers (the corpus is parallel).
    text: the sentence.
    pcm: [n_samples] int16 at schema.SAMPLE_RATE, silence-trimmed, peak 0.95.
    median_f0: Hz over voiced frames (NaN if none).
  """

  speaker: roster.Speaker
  index: int
  text: str
  pcm: np.ndarray
  median_f0: float


def _postprocess(path):
  """Engine WAV -> ([n] int16 at 16 kHz, median F0 in Hz)."""
  audio = dsp.trim_silence(dsp.load_audio(path, schema.SAMPLE_RATE))
  audio = dsp.peak_normalize(audio, 0.95)
  f0 = dsp.median_f0(dsp.resample(audio, schema.SAMPLE_RATE, _F0_SAMPLE_RATE), _F0_SAMPLE_RATE)
  return dsp.to_int16(audio), f0


def render(speaker, numbered_texts):
  """Speaks `[(index, text), ...]` with `speaker`; returns a list of `Utterance`."""
  with tempfile.TemporaryDirectory(prefix="voices-") as directory:
    paths = engines.synthesize(speaker, [text for _, text in numbered_texts], directory)
    utterances = []
    for (index, text), path in zip(numbered_texts, paths):
      pcm, f0 = _postprocess(path)
      utterances.append(Utterance(speaker, index, text, pcm, f0))
  return utterances


def _render_job(job):
  return render(*job)


def render_all(speakers, sentences, processes, description):
  """Renders every sentence with every speaker, with a tqdm progress bar.

  Args:
    speakers: list of `roster.Speaker`.
    sentences: list of str; sentence i becomes utterance i of each speaker.
    processes: worker processes; 1 renders in this process.
    description: progress bar label.

  Returns:
    List of `Utterance`, ordered by speaker (as given) then index.
  """
  numbered = list(enumerate(sentences))
  jobs = [(speaker, numbered[start:start + _CHUNK])
          for speaker in speakers for start in range(0, len(numbered), _CHUNK)]
  utterances = []
  total = len(speakers) * len(sentences)
  with tqdm.tqdm(total=total, desc=description, unit="utt") as bar, contextlib.ExitStack() as stack:
    if processes == 1:
      results = map(_render_job, jobs)
    else:
      pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(processes))
      results = pool.imap_unordered(_render_job, jobs)
    for chunk in results:
      utterances.extend(chunk)
      bar.update(len(chunk))
  order = {speaker.name: rank for rank, speaker in enumerate(speakers)}
  return sorted(utterances, key=lambda utterance: (order[utterance.speaker.name], utterance.index))


def unseen_variant_clips(per_voice, sentence_seed):
  """[(roster.Speaker, [n] float32 audio at 16 kHz)] of every UNSEEN_VARIANTS voice, `per_voice` sentences each.

  The voices are in no split of any corpus config; the sentences come from
  their own seed, so that no corpus text is spoken either.
  """
  texts = list(enumerate(sentence_lib.make_sentences(per_voice, sentence_seed)))
  return [(voice, utterance.pcm.astype(np.float32) / 32768.0)
          for voice in roster.UNSEEN_VARIANTS for utterance in render(voice, texts)]

