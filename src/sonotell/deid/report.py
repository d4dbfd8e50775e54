"""The de-identification report: every removal, written as ``DIR/deid_report.json``.

A removal says what kind of identifier it was, where (output scan id, frames or seconds, a box or a tag), which
detector found it and how sure it was. It never repeats the identifier itself: the report is shared with the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sonotell.files import write_json

REPORT_NAME = "deid_report.json"


@dataclass(frozen=True)
class Removal:
    """One identifier removed.

    ``kind``: ``sector_outside`` / ``burned_in_text`` (frames), ``dicom_tag`` / ``dicom_uid`` / ``dicom_date`` /
    ``dicom_private`` (DICOM), ``spoken_<entity>`` (speech: person, date, age, number, location ...), ``subject_id`` /
    ``scan_id``. ``where`` locates it in the output (scan id plus box, time span or tag).
    """

    kind: str
    scan_id: str
    where: dict[str, Any]
    detector: str
    confidence: float = 1.0


@dataclass
class ScanFlag:
    """Something about a scan a person should look at (no sector found, a DICOM without pixel data ...)."""

    scan_id: str
    problem: str


@dataclass
class DeidReport:
    removals: list[Removal] = field(default_factory=list)
    flags: list[ScanFlag] = field(default_factory=list)
    detectors: dict[str, str] = field(default_factory=dict)  # stage -> detector name and version
    not_covered: list[str] = field(default_factory=list)

    def add(self, removal: Removal) -> None:
        self.removals.append(removal)

    def flag(self, scan_id: str, problem: str) -> None:
        self.flags.append(ScanFlag(scan_id, problem))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.removals:
            out[r.kind] = out.get(r.kind, 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict:
        return {
            "counts": self.counts(),
            "removals": [asdict(r) for r in self.removals],
            "flags": [asdict(f) for f in self.flags],
            "detectors": self.detectors,
            "not_covered": self.not_covered,
        }

    def write(self, out_dir: str | Path) -> Path:
        return write_json(Path(out_dir) / REPORT_NAME, self.to_dict())
