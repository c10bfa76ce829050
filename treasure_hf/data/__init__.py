"""Formats (common HDF5, PCDF Parquet), the schema registry and the sources that fill them."""
