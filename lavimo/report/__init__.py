"""The self-contained HTML report of a results tree (moved to a package; being split into modules)."""

from lavimo.report.sections import (
    BANDAI_NAMCO_NOTICE,
    NOT_EVALUATED,
    PROTOCOLS,
    PUBLISHED,
    QUOTED,
    ReportSummary,
    build_report,
)

__all__ = ["BANDAI_NAMCO_NOTICE", "NOT_EVALUATED", "PROTOCOLS", "PUBLISHED", "QUOTED", "ReportSummary", "build_report"]
