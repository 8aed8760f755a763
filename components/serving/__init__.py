"""The serving contract every pushed model exports, and what it excludes."""
