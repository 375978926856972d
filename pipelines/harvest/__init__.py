"""Pull delivery (issue #7): fetch a dataset from the commune's own server.

A dataset's metadata may declare a `source` instead of a file (described and checked in
`core.sources`): a file at an http(s) URL, a WFS layer, an OGC API – Features collection,
or a resource of a CKAN or DCAT catalog. `registry.fetch` brings it to a local file in an
accepted format, or says the source has not changed; `pull.pull` runs one declared-source
folder of a commune's inbox through the same pipeline as an upload (channel
« moissonnage »).

One module per idea, one per source type:

- `contract`: what a source type promises (`SourceType`), is given (`Fetching`) and gives
  back (`FetchResult`); `errors`: `SourceError`, the one failure, in French.
- `registry`: loads each source type's implementation, named in `core.sources.SOURCE_KINDS`
  (the one list of types), and `fetch`.
- the types: `file` (`fichier`), `wfs`, `ogcapi`, `ckan`, `dcat`.
- what they share: `http` (the polite client: User-Agent, timeouts, retries with backoff
  and `Retry-After`, per-host slots), `changes` (conditional requests, validators,
  checksum), `paging`, `geojson`, `safe_xml`.
- the pipeline side: `folders` (which inbox folders declare a source), `schedule` (which
  are due), `pull` (through the pipeline), `state` (what is remembered after each check).

Nothing is re-exported here: import from the module that defines a name.
"""
