"""Atomic file writes (a temporary file beside the target, then a rename) and output directories."""

import contextlib
import json
import os
import tempfile

from common.errors import InputError


def make_dir(path, flag):
  """Creates the directory `path` and its parents (a no-op if it exists).

  Raises:
    InputError: one line naming `flag` (e.g. "--workdir") when it cannot be created.
  """
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as error:
    raise InputError(f"{flag} {path}: cannot create it ({error.strerror}); choose another directory") from None


def current_umask():
  """The process umask (read without changing it)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_path(path, suffix):
  """Yields a temporary path in `path`'s directory; on success it becomes `path`.

  The file gets the usual permissions (0666 less the umask), not mkstemp's
  0600; on any error the temporary file is removed and `path` is untouched.
  """
  handle, temporary = tempfile.mkstemp(suffix=suffix, dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
  os.close(handle)
  try:
    yield temporary
    os.chmod(temporary, 0o666 & ~current_umask())
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def save_json(path, payload):
  """Writes `payload` as indented JSON to `path` atomically."""
  with atomic_path(path, ".json") as temporary:
    with open(temporary, "w") as file:
      json.dump(payload, file, indent=2, sort_keys=True)
      file.write("\n")
