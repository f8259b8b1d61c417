"""Imports point downward: every import of a project package, parsed from the source, obeys the layers.

    common  <  dsp, kernels  <  corpora, training  <  models  <  experiments  <  benchmarks

`common` (errors, atomic files, figures, command-line plumbing) imports no
project package; `dsp` is pure signal processing on top of it, and `kernels`
the C++ kernels (the fused residual layers and head, weight gradients); a model
package may import another only along MODEL_EDGES, each with its reason.
Tests may import anything.
"""

import ast
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

LAYERS = {"common": 0, "dsp": 1, "kernels": 1, "corpora": 2, "training": 2, "wavenet": 3, "tagger": 3, "styletransfer": 3,
          "vocoder": 3, "frameprior": 3, "vlae": 3, "experiments": 4, "benchmarks": 5}
MODEL_EDGES = {
    ("vocoder", "wavenet"): "the autoregressive vocoder is a WaveNet conditioned on frame features",
    ("frameprior", "vocoder"): "the prior draws the vocoder's frame vectors",
    ("vlae", "wavenet"): "the audio VLAE's decoder is a WaveNet; its mixture likelihood",
    ("vlae", "frameprior"): "the frame VLAE's decoder is the frame prior",
    ("vlae", "vocoder"): "the frame VLAE encodes and decodes the vocoder's frame vectors",
}


def project_imports(path):
  """[(line, imported top-level package)] of one source file (absolute imports of project packages only)."""
  found = []
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.append((node.lineno, node.module.split(".")[0]))
  return [(line, package) for line, package in found if package in LAYERS]


def test_every_import_points_downward_or_along_a_declared_model_edge():
  violations = []
  for package, layer in LAYERS.items():
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, package)):
      for name in sorted(files):
        if not name.endswith(".py"):
          continue
        path = os.path.join(folder, name)
        for line, imported in project_imports(path):
          if imported == package or LAYERS[imported] < layer and not (LAYERS[imported] == layer == 3):
            continue
          if (package, imported) in MODEL_EDGES:
            continue
          violations.append(f"{os.path.relpath(path, REPO_ROOT)}:{line} imports {imported}")
  assert not violations, "\n".join(violations)


def test_the_checker_sees_an_upward_import(tmp_path):
  source = tmp_path / "probe.py"
  source.write_text("import os\nfrom experiments import interpolate\nfrom . import sibling\nimport common.errors\n")
  assert project_imports(str(source)) == [(2, "experiments"), (4, "common")]


def test_importing_dsp_loads_no_plotting_library():
  code = "import sys, dsp, dsp.plots; print(sorted(m for m in ('matplotlib', 'matplotlib.pyplot') if m in sys.modules))"
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
  assert done.stdout.strip() == "[]"
