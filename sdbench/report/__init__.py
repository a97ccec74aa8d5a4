"""Reports of results: the static HTML site and the markdown summary (formatting only, no statistics)."""
