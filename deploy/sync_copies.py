"""Copy the CRDs and the Argo CD health check to where kustomize and Helm can load them;
`--check` fails if a copy is stale.

kustomize loads no file from outside its root and a Helm chart none from outside the chart,
so the kustomize base and the chart carry byte-identical copies of the sources:

    python deploy/sync_copies.py           # refresh the copies (after `make crd`)
    python deploy/sync_copies.py --check   # exit 1 and name the stale copies
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART_CRDS = "deploy/helm/exposedapp/crds"

# (source, copy), relative to the repository root.
COPIES = (
    ("crds/exposedapp.dev_exposedapps.yaml", "deploy/kustomize/base/crd.yaml"),
    ("crds/exposedapp.dev_exposedapps.yaml", f"{CHART_CRDS}/exposedapp.dev_exposedapps.yaml"),
    (
        "deploy/peering/kopf.dev_clusterkopfpeerings.yaml",
        f"{CHART_CRDS}/kopf.dev_clusterkopfpeerings.yaml",
    ),
    ("deploy/peering/kopf.dev_kopfpeerings.yaml", f"{CHART_CRDS}/kopf.dev_kopfpeerings.yaml"),
    ("deploy/argocd/exposedapp-health.lua", "deploy/helm/exposedapp/files/argocd-health.lua"),
)


def stale(root: Path = ROOT) -> list[str]:
    """The copies that differ from their sources (or are missing)."""
    return [
        copy
        for source, copy in COPIES
        if not (root / copy).exists() or (root / copy).read_bytes() != (root / source).read_bytes()
    ]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = stale()
        for copy in found:
            print(f"stale: {copy} (run `python deploy/sync_copies.py`)", file=sys.stderr)
        return 1 if found else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for source, copy in COPIES:
        (ROOT / copy).write_bytes((ROOT / source).read_bytes())
        print(f"{source} -> {copy}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
