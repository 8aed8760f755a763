"""ExampleGen: ratings joined with their user's and item's features, in Beam."""
