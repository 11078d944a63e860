"""Baselines every comparison needs: source-only, target-only, source+target."""
