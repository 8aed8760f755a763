"""The model kinds: the hybrid's towers, item autoencoder and item-item model; WALS; content;
popularity."""
