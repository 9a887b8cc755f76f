"""`pip install` of the package, besides the build tree the other tests import.

- In CI: `pip install .` with python/ as the CMake source (`-C cmake.source-dir=python`) against
  the libkite.so the CI build made and a copy of include/kite: scikit-build-core compiles only
  kite._core (about a minute) and installs it with the library and kite/*.py into a fresh
  target directory, used from a process that sees only that directory. This is also the GPU
  machine's route (no Boost/ICU/... there: the library is built elsewhere), and it shows the
  module needs nothing of the source tree but the public headers.
- KITE_TEST_FULL_PIP_INSTALL=1 adds plain `pip install .`, which compiles the whole engine
  (minutes; too slow for every CI run).

Build times are printed (pytest -s or -rA).
"""

import glob
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BUILT, PACKAGE_DIR, ROOT, TINY

# A fresh process generating greedily from the shipped model; prints where kite came from.
PROBE = f"""
import kite
from kite import LLM, SamplingParams
llm = LLM({TINY!r})
out = llm.generate(["Once upon a time", "The dog"], SamplingParams(temperature=0, max_tokens=12),
                   use_tqdm=False)
print(kite.__file__)
print([o.outputs[0].token_ids for o in out])
"""


def probe(pythonpath, cwd):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    where, ids = r.stdout.strip().split("\n")[-2:]
    return where, ids


def expected_ids():
    where, ids = probe(PACKAGE_DIR, ROOT)
    assert where.startswith(PACKAGE_DIR)
    return ids


def pip_install(target, *config_settings):
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
           "--target", str(target)]
    for c in config_settings:
        cmd += ["-C", c]
    r = subprocess.run(cmd + [ROOT], capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return time.monotonic() - t0


def check_installed(target, tmp_path):
    installed = sorted(os.path.relpath(p, target) for p in glob.glob(str(target / "kite" / "*")))
    assert "kite/__init__.py" in installed and "kite/llm.py" in installed
    assert "kite/libkite.so" in installed
    assert any(p.startswith("kite/_core.") and p.endswith(".so") for p in installed)
    where, ids = probe(str(target), str(tmp_path))
    assert where == str(target / "kite" / "__init__.py")
    assert ids == expected_ids()


@pytest.mark.skipif(not BUILT, reason="needs the build tree's libkite.so (-DKITE_PYTHON=ON)")
def test_pip_install_against_prebuilt_libkite_with_public_headers_only(tmp_path):
    # Only the public headers and the shared library, as the GPU machine gets them.
    include = tmp_path / "include"
    shutil.copytree(os.path.join(ROOT, "include", "kite"), include / "kite")
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(os.path.join(PACKAGE_DIR, "kite", "libkite.so"), lib / "libkite.so")
    build = tmp_path / "build"
    target = tmp_path / "site"
    seconds = pip_install(target, "cmake.source-dir=python", f"build-dir={build}",
                          f"cmake.define.KITE_LIBRARY={lib / 'libkite.so'}",
                          f"cmake.define.KITE_INCLUDE_DIR={include}",
                          "cmake.define.KITE_WERROR=ON",
                          "cmake.define.CMAKE_EXPORT_COMPILE_COMMANDS=ON")
    print(f"pip install (kite._core against a prebuilt libkite.so) took {seconds:.0f} s")
    # No include path into the engine's sources: the compile commands name only include/ above
    # (and python/src, the binding's own folder).
    with open(build / "compile_commands.json") as f:
        commands = f.read()
    assert str(include) in commands
    assert os.path.join(ROOT, "src") not in commands
    assert os.path.join(ROOT, "include") not in commands
    check_installed(target, tmp_path)


@pytest.mark.skipif(os.environ.get("KITE_TEST_FULL_PIP_INSTALL") != "1",
                    reason="plain `pip install .` compiles the whole engine (minutes); "
                           "set KITE_TEST_FULL_PIP_INSTALL=1 to run it")
def test_pip_install(tmp_path):
    target = tmp_path / "site"
    seconds = pip_install(target)
    print(f"pip install . took {seconds:.0f} s")
    check_installed(target, tmp_path)
