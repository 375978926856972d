"""The catalog: its store and everything reusers touch (HTTP service, downloads)."""
