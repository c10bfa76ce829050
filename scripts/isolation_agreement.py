"""How the recomputed ``trk_iso03`` agrees with the experiments' own isolation on the test files.

For every PHYSLITE file: leptons with the default pT cuts, ``trk_iso03`` against ATLAS
``ptvarcone30`` / pT; for every NanoAOD file with ``PFCands``: against ``*_pfRelIso03_chg``
(elsewhere ``trk_iso03`` is that branch). Prints JSON: per file and lepton type the number of
objects, the Pearson correlation and the fraction within 10% (README: Sources).

    python scripts/isolation_agreement.py [--testdata DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FILES = {
    "atlas_physlite_mc_100ev.ttree.root": "atlas",
    "atlas_physlite_mc_100ev.rntuple.root": "atlas",
    "cms_pfnano_10ev.root": "cms",
}


def main(argv: list[str] | None = None) -> int:
    from treasure_hf.data.sources.agreement import isolation_agreement

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--testdata", default=os.environ.get("TREASURE_TESTDATA", str(REPO.parent / "shared" / "testdata")))
    args = p.parse_args(argv)
    report = {name: isolation_agreement(Path(args.testdata) / name, experiment) for name, experiment in FILES.items()}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
