"""The HTML report: polars for the data, plotnine for the figures, Jinja2 for the pages.

Only `edgebench report`, `edgebench serve` (which needs none of it) and the bench import this
package; the measuring process never does, so polars and plotnine stay out of a run."""
