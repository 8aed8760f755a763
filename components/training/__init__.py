"""The Trainer's run_fn and what it needs: examples in memory, warm start, the optimizer."""
