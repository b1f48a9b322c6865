"""``python -m roitrace``: the same as the ``roitrace`` command."""

from .cli import main

if __name__ == "__main__":
    main()
