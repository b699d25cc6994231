"""Benchmarks over the engine's public API: accuracy, needle in a haystack, speed.

    python -m bench accuracy|needle|speed ...   (see bench/cli.py)
"""
