"""Quality findings and reports: plain data, a text rendering and a JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")
MAX_EXAMPLES_TEXT = 8
MAX_EXAMPLES_JSON = 200


@dataclass(frozen=True)
class Finding:
    """One kind of problem: its code, severity, how many, and where (examples).

    ``examples`` name times the way the source labels them (local exchange time,
    bar start or bar end as configured) and, for CSV files, the line number.
    """

    code: str
    severity: str
    count: int
    message: str
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "count": self.count,
            "message": self.message,
            "examples": list(self.examples[:MAX_EXAMPLES_JSON]),
        }


@dataclass
class QualityReport:
    """All findings for one series or file."""

    name: str
    interval: str
    rows: int
    timezone: str
    label: str
    first: str = ""
    last: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings and infos allowed)."""
        return not self.errors

    @property
    def clean(self) -> bool:
        """No errors and no warnings."""
        return not self.errors and not self.warnings

    def finding(self, code: str) -> Finding | None:
        """The finding with this code, if any."""
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": self.interval,
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "timezone": self.timezone,
            "label": self.label,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }

    def format_text(self) -> str:
        """A few lines for the terminal: a header, then one line per finding."""
        status = "clean" if self.clean else ("ERRORS" if self.errors else "warnings")
        times = (
            f"times in {self.timezone}, bar {self.label}s"
            if self.interval not in ("1d", "1wk", "1mo")
            else "session dates"
        )
        lines = [
            f"{self.name} [{self.interval}] {self.rows} rows {self.first} .. {self.last} ({times}): "
            f"{status} - {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        ]
        for f in self.findings:
            shown = ", ".join(f.examples[:MAX_EXAMPLES_TEXT])
            more = f" (+{len(f.examples) - MAX_EXAMPLES_TEXT} more)" if len(f.examples) > MAX_EXAMPLES_TEXT else ""
            where = f": {shown}{more}" if shown else ""
            lines.append(f"  {f.severity:<7} {f.code:<22} {f.message}{where}")
        return "\n".join(lines)
