"""Choosing a method: compare methods on one problem and rank them."""

from .compare import Leaderboard, compare

__all__ = ["compare", "Leaderboard"]
