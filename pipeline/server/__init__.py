"""`recsys serve`: the pushed model over HTTP, in TF Serving's REST shape, and a JSON API
for people."""
