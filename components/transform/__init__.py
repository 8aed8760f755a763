"""Transform's module file: every raw feature becomes a model input."""
