"""Room on Python's stack for Keras's graph walk, which recurses once per layer of the longest path.

EfficientNetV2-XL has about 1,000 layers in a row: more than Python's default
limit of 1,000 frames, the more so under a test runner's or notebook's own stack.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["room_for_graph_walk"]


@contextlib.contextmanager
def room_for_graph_walk(layers: int):
    """Raises the recursion limit, for the block, to what a walk over `layers` layers needs."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 2_000 + 2 * layers))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
