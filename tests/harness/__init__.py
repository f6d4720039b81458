"""Test harnesses that run real processes (see clusters.py)."""
