"""The Nano's pip constraints against nano-check's findings, in the report.json format the
Python check writes (pyimports builds `imports`, report.write writes the file)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.nanocheck import constraints, pyimports, report


def site_with(tmp_path: Path, dists: dict[str, str]) -> Path:
    """A --target folder as pip leaves it: one .dist-info per distribution."""
    site = tmp_path / "site"
    for name, version in dists.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(name.lower().replace("-", "_") + "\n")
    return site


def written_report(tmp_path: Path, dists: dict[str, str], rc: dict[str, int] | None = None) -> dict:
    """report.json as nano-check writes it after importing each distribution (exit status `rc`)."""
    found = pyimports.distributions(site_with(tmp_path, dists))
    results = [pyimports.outcome(mod, (rc or {}).get(name, 0), "Traceback\nImportError: boom\n")
               for name, _, mod in found]
    doc = {"checks": ["python"], "python_aarch64": "3.11.2", "wheel_platforms_max_glibc": "2.27",
           "imports": pyimports.imports_record(found, results), "timings_s": {}}
    report.write(tmp_path / "report.json", doc)
    return json.loads((tmp_path / "report.json").read_text())


PROVEN = {"numpy": "2.4.6", "PyYAML": "6.0.4", "polars-runtime-32": "2.1.0"}


def test_pins_written_from_a_report_agree_with_it(tmp_path):
    doc = written_report(tmp_path, PROVEN)
    text = constraints.render(doc)
    assert "numpy==2.4.6\npolars-runtime-32==2.1.0\npyyaml==6.0.4\n" in text
    assert "Python 3.11.2" in text and "glibc <= 2.27" in text and "-cpu cortex-a57" in text
    assert constraints.disagreements(constraints.parse(text), doc["imports"]) == []


def test_every_kind_of_disagreement_is_named(tmp_path):
    pinned = constraints.parse("numpy==2.4.5\nPyYAML==6.0.4\nscipy==1.17.1\n")
    doc = written_report(tmp_path, {**PROVEN, "pillow": "13.0.0"}, rc={"PyYAML": -signal.SIGILL})
    assert constraints.disagreements(pinned, doc["imports"]) == [
        "numpy: pinned 2.4.5, nano-check installed and proved 2.4.6",
        "pillow 13.0.0 runs on the Cortex-A57 but is not pinned",
        "polars-runtime-32 2.1.0 runs on the Cortex-A57 but is not pinned",
        "pyyaml 6.0.4: SIGILL under cortex-a57 (killed by SIGILL: an instruction the Cortex-A57 (ARMv8.0) does "
        "not have); it is pinned",
        "scipy==1.17.1 is pinned but nano-check did not install it",
    ]


def test_a_failed_import_is_never_pinned(tmp_path):
    doc = written_report(tmp_path, PROVEN, rc={"numpy": 1})
    with pytest.raises(UserError, match=r"cannot pin what does not run on the Cortex-A57: \{'numpy': 'error'\}"):
        constraints.render(doc)


def test_disagreement_fails_the_acceptance(tmp_path):
    doc = written_report(tmp_path, PROVEN)
    doc["constraints"] = {"file": "x", "disagreements": ["numpy: pinned 2.4.5, nano-check installed and proved 2.4.6"]}
    (verdict,) = [a for a in report.acceptance(doc) if a["key"] == "constraints"]
    assert verdict["ok"] is False and verdict["value"] == doc["constraints"]["disagreements"]
    doc["constraints"]["disagreements"] = []
    (verdict,) = [a for a in report.acceptance(doc) if a["key"] == "constraints"]
    assert verdict["ok"] is True and verdict["value"] == "3 pins agree"


def test_the_committed_constraints_parse_and_pin_edgebenchs_board_requirements():
    pins = constraints.parse(constraints.path().read_text())
    wanted = {constraints.canonical(r.split(">")[0].split("=")[0].split("<")[0])
              for r in pyimports.board_requirements()}
    assert wanted <= set(pins), wanted - set(pins)
    assert constraints.pip_args("jetson-nano") == ("-c", str(constraints.path()))
    assert constraints.pip_args("host") == () and constraints.pip_args("jetson-orin") == ()


def test_a_malformed_pin_is_refused():
    with pytest.raises(UserError, match="is not a `name==version` pin"):
        constraints.parse("numpy>=2\n")
