"""Memory: how much this process may still allocate, and byte counts for people.

Readers refuse, before anything is allocated, frames (or chunks) that cannot fit;
the engine sizes its chunks; messages say sizes as ``2.3 KiB``, ``18.6 GiB``.
"""

from __future__ import annotations

__all__ = ["available_memory", "human_bytes"]


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


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as can be told, or None.

    The least of: the system's available memory (``MemAvailable``), what is left
    under the container's memory limit (cgroup v2 ``memory.max``; inside a
    container ``MemAvailable`` is the host's) and what is left of the address space
    allowed by ``ulimit -v`` (``RLIMIT_AS``). Used to size chunks and to refuse, with
    a clear error, a frame or working set that cannot fit before it is allocated.
    """
    limits = [
        v
        for v in (_meminfo_available(), _cgroup_available(), _address_space_left())
        if v is not None
    ]
    return max(0, min(limits)) if limits else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        return int(limit) - used
    except (OSError, ValueError):
        return None


def _address_space_left() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return soft - int(line.split()[1]) * 1024
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return None
