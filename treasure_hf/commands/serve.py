"""``treasure serve``: the PCDF transformation service over a directory of data sets."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import ArgumentError, TreasureError
from .options import positive_int

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service.app import create_app
    except ImportError as exc:
        raise TreasureError(
            f"treasure serve needs the service extra: pip install 'treasure-hf[service]' ({exc})"
        ) from None
    from ..service.settings import ServiceSettings
    from ..service.tokens import load_tokens

    root = Path(args.root)
    if not root.is_dir():
        raise ArgumentError("--root", f"{root} is not a directory")
    if not 0 <= args.port < 65536:
        raise ArgumentError("--port", f"must lie in 0..65535, got {args.port}")
    settings = ServiceSettings(
        root=root.resolve(),
        tokens=load_tokens(args.tokens),
        host=args.host,
        port=args.port,
        scheduler=args.scheduler,
        workers=args.workers,
        database=args.database,
        max_request_bytes=args.max_request_bytes,
        max_jobs_per_token=args.max_jobs_per_token,
    )
    if args.host not in LOOPBACK:
        logger.warning("serving on %s: tokens travel in clear text, put the service behind an HTTPS proxy", args.host)
    app = create_app(settings)
    logger.info(
        "serving %s on http://%s:%d (%d tokens, jobs on %s)",
        settings.root,
        args.host,
        args.port,
        len(settings.tokens),
        args.scheduler or f"a LocalCluster of {args.workers} workers",
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="the PCDF transformation service: a web API and page over a directory of data sets",
        description="Serve the data sets of ROOT/datasets (PCDF, common HDF5, tokenized or exported Parquet), the "
        "tokenizers of ROOT/tokenizers and the models of ROOT/models over HTTP: GET /datasets, "
        "/transformations, POST /jobs to run a CLI verb (pcdf-to-h5, h5-to-pcdf, tokenize, export, "
        "select) on Dask, GET /jobs/ID/result to download its output, a web page at /, the OpenAPI "
        "schema at /openapi.json. Results are cached by content (input version, transformation, "
        "parameters) under ROOT/.treasure-service; a restarted server resumes unfinished jobs.",
    )
    p.add_argument("--root", required=True, help="the directory served (every path stays inside it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes of the Dask LocalCluster that runs the jobs (default %(default)s)",
    )
    where.add_argument("--scheduler", help="address of a running Dask scheduler to run the jobs on instead")
    p.add_argument(
        "--tokens",
        help="JSON file mapping each bearer token to 'read' or 'write' (default: the "
        "environment variable TREASURE_SERVICE_TOKENS holding that JSON)",
    )
    p.add_argument(
        "--database",
        help="SQLAlchemy URL of the job registry, e.g. postgresql://HOST/DB for a shared "
        "deployment (default: SQLite in ROOT/.treasure-service)",
    )
    p.add_argument(
        "--max-request-bytes", type=positive_int, default=64 * 1024, help="largest request body (default %(default)s)"
    )
    p.add_argument(
        "--max-jobs-per-token",
        type=positive_int,
        default=4,
        help="unfinished jobs one token may have started (default %(default)s)",
    )
    p.set_defaults(func=_serve)
