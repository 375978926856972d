"""Read stage: turn a commune's data file into a table of text cells plus geometries.

Every format ends as the same `SourceTable` (`table`): attribute values as Arrow string
columns (empty cells are null), so the structure check applies one set of vectorised rules
whatever the input, and geometries as a GeoSeries in the file's own CRS.

Nothing a commune uploads may crash, hang or half-read: each reader bounds what it reads
(sizes, lines, columns, rows, archive members; `pipelines.safety`), refuses what it cannot
read with a French `SubmissionRejected` naming the rule (and the line or the column where
there is one), and never extracts or writes anything outside a temporary folder of its
own. Invalid geometries are refused, not repaired: a repaired polygon can change type or
shape, and what is published must be what the commune validated.

One module per idea:

- `stage`: `read_source`, the entry point: the format from the extension, its reader, the
  last line of defence, the mojibake repair;
- `registry`: the `InputFormat` Protocol and `reader_for`, which loads the reader that
  `core.input_formats` names for each format (adding a format: one reader module and one
  description there, see docs/input-formats.md);
- one reader per format: `csv`, `xlsx`, `geojson`, `shapefile`, `gpkg`, `kml`, `gml`
  (the last five on `geographic`, what every format GDAL reads shares);
- the shared pieces: `table` (`SourceTable`), `text` (one scan: all UTF-8, lines not too
  long), `dialect` (a CSV's decimals), `cells` (a cell as text), `crs` (a geographic file's
  CRS), `geometry` (geometries and coordinates checked); a CSV's head (text at all, which
  encoding and delimiter) and every format's column names are checked by `core.csv_head`
  and `core.column_names`, which the upload API applies at once too.
"""

STAGE = "lecture"  # the stage's name in reports
