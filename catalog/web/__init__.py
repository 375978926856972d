"""The web side of the catalog: the HTTP service that reusers, commune agents and the data
team call (issue #17).

- `app`: `create_app` assembles the routers and middleware, and nothing else;
- `registry`: the web services in one table (the pygeoapi shape): each names its routes
  or its OGC service and the path prefixes it answers under, which the rate limiter
  (`catalog.security`) reads;
- `context`: what the routes share (the store, the communes, the usage counter) and the
  lookups every route starts with (a dataset the caller may read, a release, a commune),
  with their French 404 and 410 answers;
- `views`: the JSON shapes of a dataset (summary, detail) and the published schema;
- `pages`: the portal's Jinja2 templates and their French labels;
- `aliases`: old API paths kept for one release, marked deprecated;
- `routes/`: one module per idea, each exposing `router(web)`: the portal's pages, the
  search and metadata API, downloads, rows, DCAT, usage statistics, the data team's
  health view.

The web side imports `core/`, the catalog store and the catalog's own modules; never
`pipelines/`.
"""
