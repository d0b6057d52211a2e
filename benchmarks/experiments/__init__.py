"""The experiments benchmark: see run.py."""
