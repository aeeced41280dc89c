"""Per-class counts of the privacy fixtures that a version of the redaction gets wrong.

    python bench/privacy_classes.py [REV]     # REV: a commit whose pipeline/privacy.py to measure
    python bench/privacy_classes.py --compare REV     # REV against the working tree, one table

Without REV it measures the working tree. A sentence whose expected text differs from what ASR
wrote *leaks* when the output is not the expected text; one whose expected text is the source is
*over-redacted* when the output changes it. Conversations count as one class; a case with
`evidence` also checks the evidence redacted with the call around it (or alone, for a version
without `redact_with_call`).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "privacy"


def load(rev: str | None) -> ModuleType:
    if rev is None:
        import pipeline.privacy

        return pipeline.privacy
    source = subprocess.run(
        ["git", "show", f"{rev}:pipeline/privacy.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "privacy_at_rev.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("privacy_at_rev", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sentences() -> list[tuple[str, str, str]]:
    """(class, source, expected); the class is the `# ---- name:` header above the line."""
    rows, group = [], "?"
    for line in (FIXTURES / "sentences.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("# ----"):
            group = line.removeprefix("# ----").split(":")[0].strip()
        elif line.strip() and not line.startswith("#"):
            source, expected, _ = line.split("\t")
            rows.append((group, source, expected))
    return rows


def measure(privacy: ModuleType) -> dict[str, list[int]]:
    """class → [personal cases, leaked, cases to keep, over-redacted]."""
    table: dict[str, list[int]] = {}
    for group, source, expected in sentences():
        row = table.setdefault(group, [0, 0, 0, 0])
        got = privacy.redact_text(source)
        if source != expected:
            row[0] += 1
            row[1] += got != expected
        else:
            row[2] += 1
            row[3] += got != source
    for case in json.loads((FIXTURES / "calls.json").read_text(encoding="utf-8")):
        row = table.setdefault("conversations", [0, 0, 0, 0])
        lines = [(s, t) for s, t in case["lines"]]
        personal = case["expected"] != [t for _, t in lines]
        got = privacy.redact_utterances(lines)
        wrong = got != case["expected"]
        if "evidence" in case:
            text, want = case["evidence"]
            with_call = getattr(privacy, "redact_with_call", None)
            wrong |= (with_call(text, lines) if with_call else privacy.redact_text(text)) != want
        row[0 if personal else 2] += 1
        row[1 if personal else 3] += wrong
    return table


def compare(rev: str) -> None:
    """One table: the version at `rev` against the working tree, class by class."""
    before, after = measure(load(rev)), measure(load(None))
    print(
        f"| class | personal texts | leaked at {rev} | leaked now | texts to keep | over-redacted at {rev} | now |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = [(g, before.get(g, [0, 0, 0, 0]), a) for g, a in after.items()]
    totals = (
        "**all**",
        [sum(b[i] for _, b, _ in rows) for i in range(4)],
        [sum(a[i] for *_, a in rows) for i in range(4)],
    )
    for group, b, a in [*rows, totals]:
        print(f"| {group} | {a[0]} | {b[1]} | {a[1]} | {a[2]} | {b[3]} | {a[3]} |")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        compare(sys.argv[2])
        return
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    table = measure(load(rev))
    print(f"| class | personal | leaked | keep | over-redacted |  ({rev or 'working tree'})")
    print("|---|---|---|---|---|")
    for group, (n, leaked, keep, over) in table.items():
        print(f"| {group} | {n} | {leaked} | {keep} | {over} |")
    totals = [sum(r[i] for r in table.values()) for i in range(4)]
    print(f"| **all** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} |")


if __name__ == "__main__":
    main()
