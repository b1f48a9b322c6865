"""The package as a whole: what `import roitrace` loads, old module paths."""

from __future__ import annotations

import subprocess
import sys

import roitrace as rt


def test_import_roitrace_loads_no_heavy_optional_package():
    code = (
        "import sys, roitrace\n"
        "heavy = ['numba', 'pooch', 'requests', 'matplotlib', 'pynwb', 'dask']\n"
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
        ("roitrace.kernels", "roitrace._kernels"),
    ]:
        assert importlib.import_module(old) is importlib.import_module(new)
    # importing an old path does not replace the function of the same name
    assert callable(rt.simulate) and callable(rt.fetch) and callable(rt.threshold)
