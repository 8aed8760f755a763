"""Top-k metrics over the whole catalog, shared by the release gate and the benchmarks."""
