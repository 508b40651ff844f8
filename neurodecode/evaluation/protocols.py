"""Former home of the MOABB fold generators, now in :mod:`neurodecode.data.splits`.

Kept only so that ``neurodecode.train`` (which imports :func:`zero_shot_split` from here)
works until it imports from :mod:`neurodecode.data.splits`; then this module goes.
"""

from neurodecode.data.splits import zero_shot_split

__all__ = ["zero_shot_split"]
