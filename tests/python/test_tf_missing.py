"""Without TensorFlow, importing braid.tensorflow (or its keras module) fails with one
ImportError that says what to install; braid and braid.torch are unaffected. Each
case runs in a fresh interpreter where `import tensorflow` fails."""

import subprocess
import sys

import pytest

BLOCK = "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "


def run(code):
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("module", ["braid.tensorflow", "braid.tensorflow.keras"])
def test_import_without_tensorflow_names_the_fix(module):
    out = run("import %s" % module)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: braid.tensorflow needs TensorFlow 2"), out.stderr
    assert "pip install braid[tensorflow]" in last and "tensorflow-cpu" in last


def test_braid_imports_without_tensorflow():
    out = run("import braid, braid.ops; print(braid.__version__)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
