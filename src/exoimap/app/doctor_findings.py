"""What ``exoimap doctor`` reports (:class:`Finding`) and the limits it checks against
(:class:`DoctorSettings`), shared by its checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DoctorSettings", "Finding"]


@dataclass(frozen=True)
class DoctorSettings:
    #: Seconds of clock difference with the identity platform still accepted.
    max_clock_skew: float = 120.0
    #: Free bytes the archive's disk must keep.
    min_free_bytes: int = 1 << 30
    #: Days the free space must last at the archive's growth rate.
    min_free_days: float = 7.0
    #: Seconds the index's integrity check may take before it is given up (not a failure).
    index_check_seconds: float = 30.0


@dataclass(frozen=True)
class Finding:
    """One check's verdict: what was found, and when it failed, the one thing to do. A
    ``warning`` passes (exit code 0) but has a fix worth reading too."""

    check: str
    ok: bool
    detail: str
    fix: str = ""
    account: str | None = None
    warning: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "account": self.account,
            "ok": self.ok,
            "warning": self.warning,
            "detail": self.detail,
            "fix": self.fix,
        }
