"""reports/index.html: one row per run or experiment folder, rebuilt from the folders each time
(the folders are the truth; the index holds nothing they do not)."""

from __future__ import annotations

from pathlib import Path

from orchestrator import fields as F
from orchestrator import stats
from orchestrator.errors import UserError
from orchestrator.fsutil import atomic_write
from orchestrator.report import load
from orchestrator.report.render import REPORT, env

INDEX = "index.html"


def folders(reports: Path) -> list[Path]:
    """Run and experiment folders directly under `reports` (an experiment's own runs are its rows)."""
    if not reports.is_dir():
        return []
    return sorted(p for p in reports.iterdir() if p.is_dir() and (load.is_run(p) or load.is_experiment(p)))


def headline(src: load.Source) -> dict:
    """Plain-Python figures (orchestrator.stats, as the terminal summary): the index must stay quick
    with hundreds of runs."""
    measured = [r for r in src.records if r.get(F.PHASE, "measure") == "measure"]
    ok = [r for r in measured if r.get(F.STATUS) == "ok"]
    m, p, model = src.manifest, (src.manifest.get("platform") or {}), (src.manifest.get("model") or {})
    name = model.get("name") or Path(str(model.get("path") or "?")).name
    return {
        "name": src.dir.name, "kind": src.kind, "date": (src.experiment or {}).get("created_at") or m.get("created_at"),
        "device": p.get("jetson_model") or p.get("cpu_model") or "not recorded",
        "hostname": p.get("hostname"),
        "power_mode": load.board_setting(m, "nvpmodel") or "not recorded",
        "model": f"{name} {model.get('file_type_name') or ''}".strip(), "synthetic": bool(model.get("synthetic")),
        "ttft_p50_s": stats.percentile([r[F.TTFT_S] for r in ok if r.get(F.TTFT_S) is not None], 50),
        "tbt_p50_s": stats.percentile([x for r in ok for x in r.get(F.TBT_S) or []], 50),
        F.DECODE_TOK_S: stats.describe([r.get(F.DECODE_TOK_S) for r in ok])["mean"],
        "attempts": len(measured), "failures": len(measured) - len(ok), F.STATUS: m.get(F.STATUS),
        "link": f"{src.dir.name}/{REPORT}" if (src.dir / REPORT).is_file() else None,
    }


def build(reports: Path) -> tuple[Path, list[str]]:
    """Write reports/index.html; returns it and one line per folder that could not be read.
    One damaged folder (a record without its keys, a manifest of the wrong shape, a folder we
    may not read) is listed as unreadable with the reason: it must not take the others' index down."""
    rows, problems = [], []
    for folder in folders(reports):
        try:
            rows.append(headline(load.load(folder)))
        except UserError as e:
            problems.append(f"{folder.name}: {e.message}")
        except OSError as e:
            problems.append(f"{folder.name}: {e.strerror or e} ({e.filename or folder})")
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            # the files parse but hold something of an unexpected shape (hand-edited, or another tool's)
            problems.append(f"{folder.name}: its manifest or records are not in the shape edgebench writes "
                            f"({type(e).__name__}: {e})")
    rows.sort(key=lambda r: (r["date"] or "", r["name"]), reverse=True)
    out = Path(reports) / INDEX
    atomic_write(out, env().get_template("index.html").render(rows=rows, problems=problems).encode("utf-8"))
    return out, problems
