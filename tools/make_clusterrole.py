"""Write deploy/clusterrole.yaml from the resources the scanner reads (audit.sources.cluster.resources,
whose policy kinds come from their declarations). A test fails while the file differs.

    python tools/make_clusterrole.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.sources.cluster import rbac_cluster_role

TARGET = Path(__file__).resolve().parent.parent / "deploy" / "clusterrole.yaml"


def render() -> str:
    return yaml.safe_dump(rbac_cluster_role(), sort_keys=False)


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
