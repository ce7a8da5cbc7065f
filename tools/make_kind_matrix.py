"""Write the README's policy-kind matrix from the kinds' declarations (audit.engine.kinds).

Run `python tools/make_kind_matrix.py` after changing a kind's declaration; a test fails while
the README's table differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.engine.cni import AGENTS
from audit.engine.cni.versions import describe_range
from audit.engine.kinds import kinds

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- kind matrix: written by tools/make_kind_matrix.py -->", "<!-- end of kind matrix -->"


def matrix() -> str:
    """The table: each kind's resources (group, versions, scope), who enforces it, what is evaluated."""
    rows = ["| kind | resources read (manifests and live) | enforced by | evaluated |", "|---|---|---|---|"]
    for kind in kinds():
        d = kind.declaration
        resources = "<br>".join(
            f"`{r.kind}` {r.group}/{', '.join(r.versions)} ({'namespaced' if r.namespaced else 'cluster-scoped'}"
            + (f"; read only when `{r.same_as}` is not served" if r.same_as else "") + ")" for r in d.resources)
        if d.enforced_by is None:
            enforced = "as `audit/engine/cni/` judges each CNI (NP-CNI-001/002/003)"
        else:
            enforced = ", ".join(f"`{cni}`" for cni in d.enforced_by) or "no CNI known"
        rows.append(f"| {d.name} | {resources} | {enforced} | {d.summary} |")
    rows += ["", "**Enforcement, per policy resource and CNI** (versions from the CNI's image tag, or the Calico operator's "
             "Installation; switches read from the CNI's own settings, below)", "",
             "| resource | CNI | versions | needs | documented in |", "|---|---|---|---|---|"]
    seen = set()
    for kind in kinds():
        d = kind.declaration
        for resource in (r for r in d.resources if not r.auxiliary):
            for cni, supports in (d.enforced_by or {}).items():
                for s in (s for s in supports if s.covers(resource.kind)):
                    if (resource.name, cni, s) in seen:
                        continue  # one resource served by two API groups (Calico's)
                    seen.add((resource.name, cni, s))
                    rows.append(f"| {resource.name} | `{cni}` | {describe_range(s.since, s.until)} | {f'`{s.switch}` on' if s.switch else '-'} "
                                f"| {s.source or '-'} |")
    rows += ["", "**Enforcement, per CNI** (recognised by its agent's DaemonSet; the objects are read by name, live with "
             "`get` only)", "", "| CNI | NetworkPolicy | settings read | switches |", "|---|---|---|---|"]
    for agent in AGENTS:
        read = "<br>".join(f"{ref.kind} `{ref.name}`" + (f" ({', '.join(map(ref.describe, ref.keys))})" if ref.keys else " (container flags)")
                           for ref in agent.reads) or "the DaemonSet's containers"
        env = f"<br>env {', '.join(f'`{e}`' for e in agent.env)}" if agent.env else ""
        switches = "<br>".join(f"`{name}`: {what}" for name, what in agent.switches.items()) or "-"
        rows.append(f"| {agent.title} | {agent.decided_by} | {read}{env} | {switches} |")
    for kind in kinds():
        d = kind.declaration
        if not d.fields:
            continue
        rows += ["", f"**{d.name}, field by field**", "", "| field | judged | how |", "|---|---|---|"]
        rows += [f"| `{field}` | {how} | {what} |" for field, how, what in d.fields]
    return "\n".join(rows) + "\n"


def updated(text: str) -> str:
    """The README text with the matrix between its markers replaced."""
    head, _, rest = text.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{matrix()}{END}{tail}"


if __name__ == "__main__":
    README.write_text(updated(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the kind matrix into {README}")
