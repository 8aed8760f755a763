"""Raw data: the project's CSV format, MovieLens normalizers, the synthetic generator."""
