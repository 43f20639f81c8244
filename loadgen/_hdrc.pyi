"""Types of the C extension _hdrc.c (built optionally; see setup.py)."""

from array import array

def record_counts(address: int, values: array[int], /) -> tuple[int, int, int]: ...
