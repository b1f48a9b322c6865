"""Example data: the simulator (movies whose truth is known) and downloads of the
teaching notebook's recordings."""

from .fetch import cache_dir, fetch
from .simulate import Simulation, simulate

__all__ = ["Simulation", "cache_dir", "fetch", "simulate"]
