"""roitrace: turn calcium-imaging movies into one fluorescence trace per cell."""
from ._version import __version__
from .errors import *  # noqa: F403
from .movie import Movie, as_movie, open_movie
