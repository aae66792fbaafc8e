"""Operators' audit: export what the services consumed and published, verify it against the cores, and
explain a provider's figures."""
