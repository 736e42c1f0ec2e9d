"""The parts of tests/bench.py (`just bench`), one concern each."""
