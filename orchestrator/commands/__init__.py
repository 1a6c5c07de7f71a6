"""The `edgebench` subcommands: option parsing and printing only; the work lives in library modules."""
