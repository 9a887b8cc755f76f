"""The two other ways the package is built, besides the build tree the other tests use:

- `pip install .` (scikit-build-core drives the top-level CMake build with KITE_PYTHON=ON) into
  a fresh target directory, then used from a process that sees only that directory;
- the GPU machine's route: kite._core compiled alone (python/ in standalone mode) against a
  prebuilt libkite.so with only include/kite on the include path.

Both build C++ and take minutes on a cold ccache; their times are printed (pytest -s or -rA).
"""

import glob
import os
import shutil
import subprocess
import sys
import time

from conftest import PACKAGE_DIR, ROOT, TINY

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


def test_pip_install(tmp_path):
    target = tmp_path / "site"
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
         "--target", str(target), ROOT],
        capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    print(f"pip install . took {seconds:.0f} s")
    installed = sorted(os.path.relpath(p, target) for p in glob.glob(str(target / "kite" / "*")))
    assert "kite/__init__.py" in installed and "kite/libkite.so" in installed
    assert any(p.startswith("kite/_core.") and p.endswith(".so") for p in installed)
    where, ids = probe(str(target), str(tmp_path))
    assert where == str(target / "kite" / "__init__.py")
    assert ids == expected_ids()


def test_module_builds_against_prebuilt_libkite_and_public_headers_only(tmp_path):
    # Only the public headers and the shared library, as the GPU bundle carries them.
    include = tmp_path / "include"
    shutil.copytree(os.path.join(ROOT, "include", "kite"), include / "kite")
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(os.path.join(PACKAGE_DIR, "kite", "libkite.so"), lib / "libkite.so")
    build = tmp_path / "build"
    t0 = time.monotonic()
    configure = subprocess.run(
        ["cmake", "-S", os.path.join(ROOT, "python"), "-B", str(build), "-G", "Ninja",
         f"-DKITE_LIBRARY={lib / 'libkite.so'}", f"-DKITE_INCLUDE_DIR={include}",
         f"-DPython_EXECUTABLE={sys.executable}", "-DKITE_WERROR=ON",
         "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"],
        capture_output=True, text=True, timeout=600)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    b = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True,
                       text=True, timeout=1800)
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr[-4000:]
    print(f"standalone module build took {time.monotonic() - t0:.0f} s")
    # No include path into the source tree: the compile commands name only include/ above.
    with open(build / "compile_commands.json") as f:
        commands = f.read()
    assert str(include) in commands
    assert os.path.join(ROOT, "src") not in commands and os.path.join(ROOT, "include") not in commands
    assert (build / "kite" / "libkite.so").exists()
    where, ids = probe(str(build), str(tmp_path))
    assert where == str(build / "kite" / "__init__.py")
    assert ids == expected_ids()
