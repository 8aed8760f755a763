"""Benchmarks: `make bench` times the pipeline; figures land in bench/results/."""
