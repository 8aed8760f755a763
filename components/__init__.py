"""TFX components and module files of the recommender pipeline."""
