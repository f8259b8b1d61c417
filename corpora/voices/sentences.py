"""Seeded English sentences from templates over a small word list (no quoted text).

Each sentence has 7 to 14 words, about 2.5 to 5 seconds of synthetic speech,
and mixes statements, requests and questions for prosodic variety.
"""

import random

_ADJECTIVES = (
    "quiet bright heavy gentle yellow narrow ancient frozen curious silver crooked hollow velvet rusty "
    "sudden golden purple tiny enormous careful broken cheerful distant smooth wooden muddy polished "
    "shallow noisy fragile").split()
_NOUNS = (
    "river lantern basket violin engine garden pebble blanket kettle ladder compass feather bicycle "
    "window mirror candle puzzle wagon harbour pillow hammer saddle orchard tunnel jacket teapot "
    "chimney anchor notebook trumpet").split()
_PAST = (
    "carried painted found dropped watched followed measured borrowed cleaned repaired counted lifted "
    "opened pushed tested hid chased weighed polished wrapped").split()
_BASE = (
    "carry paint find drop watch follow measure borrow clean repair count lift open push test hide "
    "chase weigh polish wrap").split()
_PLACES = (
    "near the station", "behind the old barn", "across the valley", "under the kitchen table",
    "beside the frozen lake", "on the top shelf", "at the edge of town", "inside the museum",
    "along the coast", "by the garden gate", "over the wooden bridge", "below the lighthouse")
_TIMES = (
    "before dawn", "after lunch", "every Tuesday", "late last night", "in early spring",
    "during the storm", "at half past nine", "on a windy morning", "yesterday afternoon",
    "twice a week", "once in a while", "before the holidays")
_NAMES = (
    "Anna Marcus Priya Tomas Helen Oscar Leila Victor Nora Samuel Greta Daniel Ingrid Felix Rosa "
    "Hugo").split()
_NUMBERS = "two three four five six seven eight nine ten eleven twelve twenty".split()
_EVENTS = (
    "the guests arrive", "the rain begins", "the market closes", "the train leaves",
    "the sun goes down", "the music starts", "the bell rings", "the river rises")

_TEMPLATES = (
    "The {adj} {noun} {past} the {adj2} {noun2} {place}.",
    "{name} {past} {number} {adj} {nouns} {time}.",
    "Did the {noun} really {base} the {adj} {noun2} {place}?",
    "{Time}, the {adj} {noun} was {past} {place}.",
    "Please {base} the {adj} {noun} before {event}.",
    "We {past} {number} {nouns} and {a_adj} {noun2} {place}.",
    "{name} said the {noun} looked {adj} {time}.",
    "Why would {name} {base} {a_adj} {noun} {place}?",
    "Nobody will {base} the {adj} {noun} until {event}.",
    "If {event}, {name} will {base} the {adj} {noun}.",
)


def _plural(noun):
  return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _sentence(rng):
  noun, noun2 = rng.sample(_NOUNS, 2)
  adj, adj2 = rng.sample(_ADJECTIVES, 2)
  verb = rng.randrange(len(_PAST))
  time = rng.choice(_TIMES)
  text = rng.choice(_TEMPLATES).format(
      adj=adj, a_adj=("an " if adj[0] in "aeiou" else "a ") + adj, adj2=adj2, noun=noun, noun2=noun2, nouns=_plural(noun), past=_PAST[verb],
      base=_BASE[verb], place=rng.choice(_PLACES), time=time, Time=time.capitalize(),
      name=rng.choice(_NAMES), number=rng.choice(_NUMBERS), event=rng.choice(_EVENTS))
  return text[0].upper() + text[1:]


def make_sentences(count, seed):
  """Returns `count` distinct sentences (str), the same for the same `seed`."""
  rng = random.Random(seed)
  sentences = {}
  while len(sentences) < count:
    sentences.setdefault(_sentence(rng), None)
  return list(sentences)
