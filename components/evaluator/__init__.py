"""The Evaluator: TFX's component on an executor that scores a batch at a time."""
