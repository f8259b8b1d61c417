"""Slow tier: the listening page from the shipped models, rendered by headless Chromium, every source decoding."""

import os
import re
import shutil
import subprocess

import matplotlib.image
import pytest

import dsp
from common.errors import InputError
from experiments import listening_page

pytestmark = pytest.mark.slow
ARTEFACTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "artefacts")  # kept after the run


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  out = tmp_path_factory.mktemp("page_parent") / "page"
  listening_page.main(["--seconds", "0.5", "--num", "1", "--steps", "2", "--out", str(out)])
  return out


def test_every_audio_source_and_picture_of_the_page_exists_and_decodes(page):
  html = (page / "index.html").read_text()
  audio = re.findall(r'<audio[^>]* src="([^"]+)"', html)
  pictures = re.findall(r'<img src="([^"]+)"', html)
  assert len(audio) == 2 + 2 + 4 + 2 + 3 + 1  # garble (frames, direct), copy synthesis, path, two style tables
  for source in audio:
    assert len(dsp.load_audio(page / source, 16000)) > 1000, source
    assert os.path.splitext(source)[0] + ".png" in pictures  # every clip shows its spectrogram
  for source in pictures:
    assert matplotlib.image.imread(page / source).shape[0] > 100, source
  assert not [name for name in os.listdir(page) if name.startswith(".")]
  assert sum(f.stat().st_size for f in page.rglob("*") if f.is_file()) < 5e6


def test_headless_chromium_renders_the_page(page):
  browser = shutil.which("chromium")
  assert browser, "no chromium: bash install.sh --tests installs it"
  os.makedirs(ARTEFACTS, exist_ok=True)
  shot = os.path.join(ARTEFACTS, "listening_page.png")
  done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                         "--window-size=1280,2000", (page / "index.html").as_uri()],
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  screenshot = matplotlib.image.imread(shot)
  assert screenshot.shape[:2] == (2000, 1280) and screenshot.std() > 0.05  # not a blank page


def test_an_existing_folder_that_is_no_page_is_refused_and_left_alone(tmp_path):
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "mine.txt").write_text("keep")
  with pytest.raises(InputError, match="holds no listening page"):
    listening_page.main(["--out", str(tmp_path / "notes")])
  assert os.listdir(tmp_path / "notes") == ["mine.txt"]
  with pytest.raises(InputError, match="--tagger and --tag go together"):
    listening_page.main(["--tagger", "runs/x", "--out", str(tmp_path / "page")])
  assert not (tmp_path / "page").exists()


def test_a_missing_shipped_model_is_one_line_and_leaves_no_page(tmp_path, monkeypatch, capsys):
  from common import cli
  from experiments import sample_garble
  monkeypatch.setattr(sample_garble, "SHIPPED_PRIOR", str(tmp_path / "no_prior"))
  with pytest.raises(SystemExit) as exit_info:
    cli.run(listening_page.main, ["--out", str(tmp_path / "page")])
  error = capsys.readouterr().err
  assert exit_info.value.code == 2 and error.count("\n") == 1 and "no_prior" in error
  assert os.listdir(tmp_path) == []  # neither the page nor its staging folder
