"""For Beam's --setup_file, which wants a setup.py: remote workers install this project from it.
Everything is declared in pyproject.toml."""

from setuptools import setup

setup()
