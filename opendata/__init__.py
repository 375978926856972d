"""The edge: the `opendata` command line, which wires the pipeline and the catalog."""
