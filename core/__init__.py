"""The platform's shared words: clock, settings, producers, vocabularies, licences, and
the problems a check reports. Both wings (`pipelines/`, `catalog/`) import them; this
package imports nothing of the project (import-linter contract in pyproject.toml)."""
