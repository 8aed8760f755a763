"""Pipeline definition, its configuration, runners and the `recsys` command line."""
