"""Build the wheel, install it alone into a fresh virtual environment and use it from outside the
source tree: ``treasure --help``, generate a few events, train a tokenizer, tokenize, finetune a
tiny model, and push the tokenizer, the data set and the model to a loopback hub.

It proves what an editable install hides: the package data (card templates, the service page)
ships in the wheel, nothing imports from the checkout, and the console script works.
The fresh environment reuses the dependencies already installed in ``--deps-venv`` (a ``.pth``
file, no download); only treasure-hf itself comes from the wheel.

    python scripts/wheel_smoke.py --deps-venv .venv
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from hub_server import LoopbackHub  # noqa: E402

log = logging.getLogger("wheel_smoke")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run one command; on failure print its output's tail and stop with its exit status."""
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    log.info("%5.1f s  %s", time.perf_counter() - start, " ".join(str(c) for c in cmd[:4]))
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        sys.exit(f"error: {cmd[0]}: exit {out.returncode}: {' '.join(map(str, cmd))}")
    return out.stdout


def site_packages(venv: Path) -> Path:
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    return Path(purelib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deps-venv",
        type=Path,
        default=ROOT / ".venv",
        help="virtual environment whose installed dependencies the fresh one reuses",
    )
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    deps = site_packages(args.deps_venv.resolve())
    if not deps.is_dir():
        sys.exit(f"error: {args.deps_venv}: site-packages: not found")

    with tempfile.TemporaryDirectory(prefix="treasure-wheel-") as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        py = str(args.deps_venv.resolve() / "bin" / "python")
        run(
            [py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
            cwd=work,
        )
        wheel = next((work / "dist").glob("treasure_hf-*.whl"))
        venv = work / "venv"
        run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
        # Dependencies by path, after the fresh site-packages: the wheel's copy wins.
        (site_packages(venv) / "deps.pth").write_text(f"{deps}\n")
        run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
            cwd=work,
        )

        bin_ = venv / "bin"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
        where = json.loads(
            run(
                [
                    str(bin_ / "python"),
                    "-c",
                    "import json, treasure_hf, treasure_hf.hf.cards as c; from pathlib import Path; "
                    "p = Path(treasure_hf.__file__).parent; "
                    "print(json.dumps({'pkg': str(p), 'templates': sorted(x.name for x in "
                    "(p / 'hf' / 'templates').glob('*.md')), 'page': sorted(x.name for x in "
                    "(p / 'service' / 'page').iterdir())}))",
                ],
                cwd=work,
                env=env,
            )
        )
        if not Path(where["pkg"]).is_relative_to(venv):
            sys.exit(f"error: {wheel.name}: treasure_hf: imported from {where['pkg']}, not the wheel")
        if not where["templates"] or not where["page"]:
            sys.exit(
                f"error: {wheel.name}: package data: missing (templates {where['templates']}, page {where['page']})"
            )

        treasure = str(bin_ / "treasure")
        run([treasure, "--help"], cwd=work, env=env)
        for process, seed in (("hzz4l", 1), ("zz4l", 2)):
            run(
                [
                    treasure,
                    "-q",
                    "generate",
                    process,
                    "--events",
                    "150",
                    "--seed",
                    str(seed),
                    "--out",
                    f"{process}.pcdf",
                ],
                cwd=work,
                env=env,
            )
        run(
            [
                treasure,
                "-q",
                "train-tokenizer",
                "--data",
                "hzz4l.pcdf",
                "zz4l.pcdf",
                "--types",
                "electrons,muons",
                "--method",
                "fsq",
                "--steps",
                "30",
                "--out",
                "tok",
            ],
            cwd=work,
            env=env,
        )
        run(
            [
                treasure,
                "-q",
                "tokenize",
                "--tokenizer",
                "tok",
                "--data",
                "hzz4l.pcdf",
                "zz4l.pcdf",
                "--label",
                "hzz4l.pcdf=signal",
                "--label",
                "zz4l.pcdf=background",
                "--out",
                "data",
            ],
            cwd=work,
            env=env,
        )
        run(
            [
                treasure,
                "-q",
                "finetune",
                "--data",
                "data",
                "--out",
                "clf",
                "--epochs",
                "1",
                "--hidden-size",
                "16",
                "--layers",
                "1",
                "--heads",
                "2",
                "--report-to",
                "none",
            ],
            cwd=work,
            env=env,
        )
        with LoopbackHub() as hub:
            hub_env = hub.client_env(env)
            for folder, repo in (("tok", "smoke/tokenizer"), ("data", "smoke/events"), ("clf", "smoke/classifier")):
                run([treasure, "-q", "push", folder, "--repo-id", repo], cwd=work, env=hub_env)
            if hub.state.unhandled:
                sys.exit(f"error: loopback hub: requests: unhandled {hub.state.unhandled}")
            cards = {key[1]: repo.files("main").get("README.md", b"") for key, repo in hub.state.repos.items()}
        missing = [repo for repo, card in cards.items() if not card.strip()]
        if len(cards) != 3 or missing:
            sys.exit(f"error: loopback hub: README.md: missing card for {missing or sorted(cards)}")
        log.info("wheel %s: installed alone, used from %s, pushed %s", wheel.name, work, ", ".join(sorted(cards)))


if __name__ == "__main__":
    main()
