"""API keys: their records, hashing and the keys file (pure: no Flask), read by ``tracesearch.api.auth``."""
