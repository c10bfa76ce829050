"""The PCDF transformation service (``treasure serve``): an HTTP API and a web page over a
directory of registered data sets, which run the pre-determined transformations (the CLI verbs)
on Dask, cache their results by content and serve them.

Needs the ``service`` extra (FastAPI, uvicorn, SQLAlchemy, httpx); ``import treasure_hf`` never
imports it. One module per job: :mod:`.settings` (options and limits), :mod:`.paths` (checks
against the root), :mod:`.tokens` (bearer tokens), :mod:`.catalog` (what is registered),
:mod:`.describe` (metadata and Parquet statistics without a full read), :mod:`.versions`
(content hashes), :mod:`.transformations` (the registry), :mod:`.worker` (what runs on Dask),
:mod:`.registry` (the job database), :mod:`.jobs` (submission, caching, restarts),
:mod:`.results` (manifests and files), :mod:`.problems` (HTTP errors) and :mod:`.app` (the routes).
"""
