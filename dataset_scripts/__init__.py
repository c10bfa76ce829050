"""Dataset builders of treasure-hf, used from code (datasets 5 runs no loading scripts).

``pcdf_events.PCDFEvents`` turns PCDF tables (or common HDF5) into one row per event with a list
per object type; reach it through :func:`treasure_hf.load_pcdf`. Tokenized data sets and every
export are plain Parquet shards with a ``README.md`` card, which stock
``datasets.load_dataset(DIR)`` reads without treasure_hf.
"""
