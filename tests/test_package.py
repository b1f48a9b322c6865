"""The package as a whole: what `import roitrace` loads, old module paths."""

from __future__ import annotations

import subprocess
import sys

import roitrace as rt


def test_import_roitrace_loads_no_heavy_optional_package():
    code = (
        "import sys, roitrace\n"
        "heavy = ['numba', 'pooch', 'requests', 'matplotlib', 'pynwb', 'dask', 'zarr']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"`import roitrace` loaded {out.stdout.strip()}"


def test_old_module_paths_are_the_new_modules():
    import importlib

    for old, new in [
        ("roitrace.masks", "roitrace.threshold"),
        ("roitrace.simulate", "roitrace.datasets.simulate"),
        ("roitrace.fetch", "roitrace.datasets.fetch"),
        ("roitrace.demo", "roitrace.datasets.demo"),
        ("roitrace.imagej", "roitrace.io.imagej"),
        ("roitrace.nwb", "roitrace.io.nwb"),
        ("roitrace.suite2p", "roitrace.io.suite2p"),
        ("roitrace.kernels", "roitrace._kernels"),
    ]:
        assert importlib.import_module(old) is importlib.import_module(new)
    # importing an old path does not replace the function of the same name
    assert callable(rt.simulate) and callable(rt.fetch) and callable(rt.threshold)
    from roitrace.nwb import write_nwb  # noqa: F401 - the README's name
    from roitrace.simulate import LABEL_THRESHOLD  # noqa: F401

    assert rt.nwb is importlib.import_module("roitrace.io.nwb")  # an attribute too
