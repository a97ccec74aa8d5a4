"""One exporter per output format, shared by the commands and the report: `table` (aligned text
for the terminal), `markdown`, `json` and `csv`. Each turns rows it is given into text; none
computes a figure. Text from results is escaped by `sdbench.export.escape` in every format."""
