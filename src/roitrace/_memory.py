"""Memory: how much this process may still allocate, and byte counts for people.

Readers refuse, before anything is allocated, frames (or chunks) that cannot fit;
the engine sizes its chunks; messages say sizes as ``2.3 KiB``, ``18.6 GiB``.
"""

from __future__ import annotations

__all__ = ["human_bytes"]


def human_bytes(n: float) -> str:
    """A byte count for people: 2.3 KiB, 18.6 GiB.

    Examples
    --------
    >>> human_bytes(512), human_bytes(2355), human_bytes(20 * 1024**3)
    ('512 bytes', '2.3 KiB', '20.0 GiB')
    """
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
