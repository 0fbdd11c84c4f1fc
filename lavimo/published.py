"""Published numbers to compare against: Tables 1-4 of the LAVIMO paper, transcribed once, here.

Source: Yin et al., "Tri-Modal Motion Retrieval by Learning a Joint Embedding Space" (arXiv:2403.00691),
Table 1 (text-motion retrieval, HumanML3D), Table 2 (the same, KIT-ML), Table 3 (video-motion retrieval,
HumanML3D) and Table 4 (the same, KIT-ML). Every row of those tables is here, with every protocol the table
gives ((a)-(d) for Tables 1-2; (a)-(c) for Tables 3-4, which have no small-batch protocol). The numbers of
TEMOS, Guo et al., MotionCLIP, TMR and MotionSet are as the LAVIMO paper reports them (its Tables 3-4 retrain
MotionCLIP and MotionSet on the two datasets). ``tests/test_report.py`` checks every value against the
tables' text in ``tests/data/lavimo_paper_tables.txt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lavimo.evaluate import METRIC_NAMES

PAPER = 'Yin et al., "Tri-Modal Motion Retrieval by Learning a Joint Embedding Space", arXiv:2403.00691'

# The compared methods, as the paper cites them (its reference number and the work).
REFERENCES: dict[str, str] = {
    "TEMOS": "[30] Petrovich, Black, Varol: TEMOS, ECCV 2022",
    "Guo et al.": "[13] Guo et al.: Generating diverse and natural 3D human motions from text, CVPR 2022",
    "MotionCLIP": "[45] Tevet et al.: MotionCLIP, ECCV 2022",
    "TMR": "[31] Petrovich, Black, Varol: TMR, ICCV 2023, arXiv:2305.00976",
    "MotionSet": "[39] Ren et al.: Video-based human motion capture data retrieval via MotionSet network, "
    "IEEE Access 2020",
    "LAVIMO 2-modal": "the paper's own 2-modal version (text and motion only)",
    "LAVIMO 3-modal": "the paper's own 3-modal version (text, video and motion)",
}

# Where the printed table is not a plain number, what was read.
TRANSCRIPTION_NOTES: tuple[str, ...] = (
    "Table 1 prints two values with a decimal comma: (c) TEMOS motion-to-text R@3 '39,00' and (d) Guo et al. "
    "motion-to-text R@5 '89,87'; read as 39.00 and 89.87.",
    "Table 1 (b) TEMOS motion-to-text MedR is printed '129.0' and Table 3 (b) MotionCLIP motion-to-video R@10 "
    "'28.0'; read as 129.00 and 28.00.",
)


@dataclass(frozen=True)
class PublishedTable:
    """One table of the paper: per protocol, per method, the 12 numbers of a printed row.

    A row's numbers are the first direction's R@1, R@2, R@3, R@5, R@10, MedR, then the second direction's.
    """

    number: int
    dataset: str
    directions: tuple[str, str]
    title: str
    numbers: Mapping[str, Mapping[str, tuple[float, ...]]]

    @property
    def source(self) -> str:
        return f"{PAPER}, Table {self.number}"

    def methods(self) -> list[str]:
        """The table's methods in its row order."""
        seen: dict[str, None] = {}
        for rows in self.numbers.values():
            seen.update(dict.fromkeys(rows))
        return list(seen)

    def values(self, method: str) -> dict[str, dict[str, dict[str, float]]]:
        """protocol -> direction -> metric -> value of one method (protocols the table gives it)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for protocol, rows in self.numbers.items():
            if method in rows:
                numbers = rows[method]
                width = len(METRIC_NAMES)
                out[protocol] = {
                    d: dict(zip(METRIC_NAMES, numbers[k * width : (k + 1) * width], strict=True))
                    for k, d in enumerate(self.directions)
                }
        return out


@dataclass(frozen=True)
class PublishedRow:
    """One method's row of one published table."""

    dataset: str
    method: str
    directions: tuple[str, str]
    table: int
    values: Mapping[str, Mapping[str, Mapping[str, float]]]

    @property
    def source(self) -> str:
        cited = "" if self.method.startswith("LAVIMO") else f"{self.method} ({REFERENCES[self.method]}) as reported in "
        return f"{cited}{PAPER}, Table {self.table}"

    @property
    def citation(self) -> str:
        """The short citation shown beside the row ("Table 1")."""
        return f"Table {self.table}"


TEXT = ("t2m", "m2t")
VIDEO = ("v2m", "m2v")

TABLES: tuple[PublishedTable, ...] = (
    PublishedTable(
        1,
        "humanml3d",
        TEXT,
        "Text-to-motion retrieval on HumanML3D",
        {
            "normal": {
                "TEMOS": (2.12, 4.09, 5.87, 8.26, 13.52, 173.00, 3.86, 4.54, 6.94, 9.38, 14.00, 183.25),
                "Guo et al.": (1.80, 3.42, 4.79, 7.12, 12.47, 81.00, 2.92, 3.74, 6.00, 8.36, 12.95, 81.50),
                "MotionCLIP": (2.33, 5.85, 8.93, 12.77, 18.14, 103.00, 5.12, 6.97, 8.35, 12.46, 19.02, 91.42),
                "TMR": (5.68, 10.59, 14.04, 20.34, 30.94, 28.00, 9.95, 12.44, 17.95, 23.56, 32.69, 28.50),
                "LAVIMO 2-modal": (5.93, 10.89, 14.67, 20.78, 32.47, 24.00, 8.08, 12.30, 16.85, 23.39, 34.64, 23.50),
                "LAVIMO 3-modal": (6.37, 11.84, 15.60, 21.95, 33.67, 24.00, 9.72, 13.33, 18.73, 25.00, 36.55, 22.50),
            },
            "threshold": {
                "TEMOS": (5.21, 8.22, 11.14, 15.09, 22.12, 79.00, 5.48, 6.19, 9.00, 12.01, 17.10, 129.00),
                "Guo et al.": (5.30, 7.83, 10.75, 14.59, 22.51, 54.00, 4.95, 5.68, 8.93, 11.64, 16.94, 69.50),
                "MotionCLIP": (7.22, 10.58, 13.48, 19.07, 23.65, 55.00, 7.10, 10.21, 13.57, 20.04, 25.44, 53.87),
                "TMR": (11.60, 15.39, 20.50, 27.72, 38.52, 19.00, 13.20, 15.73, 22.03, 27.65, 37.63, 21.50),
                "LAVIMO 2-modal": (11.32, 15.01, 20.91, 27.93, 40.97, 17.00, 12.95, 17.56, 22.69, 29.05, 39.58, 19.00),
                "LAVIMO 3-modal": (12.94, 17.38, 23.63, 30.13, 42.46, 16.00, 13.89, 17.11, 23.83, 29.93, 41.09, 17.50),
            },
            "dissimilar": {
                "TEMOS": (20.00, 33.00, 37.00, 47.00, 62.00, 6.00, 24.00, 30.00, 39.00, 47.00, 62.00, 6.74),
                "Guo et al.": (13.00, 27.00, 39.00, 51.00, 72.00, 5.00, 24.00, 39.00, 46.00, 58.00, 71.00, 4.50),
                "MotionCLIP": (21.00, 31.00, 37.00, 49.00, 65.00, 6.00, 21.00, 36.00, 45.00, 53.00, 69.00, 5.12),
                "TMR": (34.00, 56.00, 61.00, 68.00, 76.00, 2.00, 47.00, 55.00, 65.00, 71.00, 78.00, 2.50),
                "LAVIMO 2-modal": (51.00, 63.00, 69.00, 76.00, 80.00, 1.50, 52.00, 65.00, 70.00, 77.00, 80.00, 1.00),
                "LAVIMO 3-modal": (50.00, 71.00, 79.00, 86.00, 90.00, 1.00, 56.00, 73.00, 81.00, 86.00, 92.00, 1.00),
            },
            "guo": {
                "TEMOS": (40.49, 53.52, 61.14, 70.96, 84.15, 2.33, 39.96, 53.49, 61.79, 72.40, 85.89, 2.33),
                "Guo et al.": (52.48, 71.05, 80.65, 89.86, 96.58, 1.39, 52.00, 71.21, 81.11, 89.87, 96.78, 1.38),
                "MotionCLIP": (46.24, 60.25, 68.93, 80.47, 91.35, 1.88, 44.76, 56.81, 65.22, 77.83, 90.19, 2.03),
                "TMR": (67.16, 81.32, 86.81, 91.43, 95.36, 1.04, 67.97, 81.20, 86.35, 91.70, 95.27, 1.03),
                "LAVIMO 2-modal": (66.74, 78.98, 83.67, 87.29, 91.66, 1.02, 67.87, 79.62, 84.08, 88.27, 91.61, 1.01),
                "LAVIMO 3-modal": (68.58, 81.04, 85.02, 88.77, 92.58, 1.01, 68.64, 81.06, 85.52, 88.76, 92.82, 1.01),
            },
        },
    ),
    PublishedTable(
        2,
        "kitml",
        TEXT,
        "Text-to-motion retrieval on KIT-ML",
        {
            "normal": {
                "TEMOS": (7.11, 13.25, 17.59, 24.10, 35.66, 24.00, 11.69, 15.30, 20.12, 26.63, 36.39, 26.50),
                "Guo et al.": (3.37, 6.99, 10.84, 16.87, 27.71, 28.00, 4.94, 6.51, 10.72, 16.14, 25.30, 28.50),
                "MotionCLIP": (4.87, 9.31, 14.36, 20.09, 31.57, 26.00, 6.55, 11.28, 17.12, 25.48, 34.97, 23.00),
                "TMR": (7.23, 13.98, 20.36, 28.31, 40.12, 17.00, 11.20, 13.86, 20.12, 28.07, 38.55, 18.00),
                "LAVIMO 2-modal": (8.59, 15.04, 21.09, 32.23, 46.09, 13.00, 11.72, 17.19, 23.63, 32.81, 48.83, 12.00),
                "LAVIMO 3-modal": (10.16, 19.92, 24.61, 34.57, 49.80, 11.00, 15.43, 20.12, 26.95, 34.57, 53.32, 10.00),
            },
            "threshold": {
                "TEMOS": (18.55, 24.34, 30.84, 42.29, 56.37, 7.00, 17.71, 22.41, 28.80, 35.42, 47.11, 13.25),
                "Guo et al.": (13.25, 22.65, 29.76, 39.04, 49.52, 11.00, 10.48, 13.98, 20.48, 27.95, 38.55, 17.25),
                "MotionCLIP": (13.79, 23.08, 31.45, 42.93, 53.01, 9.00, 13.24, 22.11, 29.53, 38.06, 50.23, 10.00),
                "TMR": (24.58, 30.24, 41.93, 50.48, 60.36, 5.00, 19.64, 23.73, 32.53, 41.20, 53.01, 9.50),
                "LAVIMO 2-modal": (24.02, 30.86, 42.73, 54.69, 70.09, 5.00, 21.68, 27.93, 34.18, 42.77, 57.42, 8.00),
                "LAVIMO 3-modal": (30.86, 41.80, 48.63, 59.96, 74.22, 4.00, 25.98, 31.25, 38.28, 45.70, 63.09, 6.50),
            },
            "dissimilar": {
                "TEMOS": (24.00, 40.00, 46.00, 54.00, 70.00, 5.00, 33.00, 39.00, 45.00, 49.00, 64.00, 6.50),
                "Guo et al.": (16.00, 29.00, 36.00, 48.00, 66.00, 6.00, 24.00, 29.00, 36.00, 46.00, 66.00, 7.00),
                "MotionCLIP": (19.00, 33.00, 41.00, 50.00, 69.00, 6.00, 28.00, 36.00, 43.00, 48.00, 65.00, 7.00),
                "TMR": (26.00, 46.00, 60.00, 70.00, 83.00, 3.00, 34.00, 45.00, 60.00, 69.00, 82.00, 3.50),
                "LAVIMO 2-modal": (29.00, 45.00, 60.00, 71.00, 81.00, 2.00, 43.00, 59.00, 67.00, 73.00, 83.00, 2.00),
                "LAVIMO 3-modal": (30.00, 49.00, 63.00, 73.00, 84.00, 3.00, 48.00, 60.00, 66.00, 76.00, 82.00, 2.00),
            },
            "guo": {
                "TEMOS": (43.88, 58.25, 67.00, 74.00, 84.75, 2.06, 41.88, 55.88, 65.62, 75.25, 85.75, 2.25),
                "Guo et al.": (42.25, 62.62, 75.12, 87.50, 96.12, 1.88, 39.75, 62.75, 73.62, 86.88, 95.88, 1.95),
                "MotionCLIP": (41.29, 55.38, 69.50, 78.83, 90.12, 1.73, 39.55, 52.07, 68.13, 77.94, 90.85, 2.16),
                "TMR": (49.25, 69.75, 78.25, 87.88, 95.00, 1.50, 50.12, 67.12, 76.88, 88.88, 94.75, 1.53),
                "LAVIMO 2-modal": (53.96, 76.42, 82.05, 89.66, 95.22, 1.38, 58.58, 75.05, 81.84, 89.68, 93.86, 1.23),
                "LAVIMO 3-modal": (58.10, 77.80, 86.34, 93.08, 96.47, 1.08, 60.23, 77.52, 86.44, 93.22, 95.87, 1.20),
            },
        },
    ),
    PublishedTable(
        3,
        "humanml3d",
        VIDEO,
        "Video-to-motion retrieval on HumanML3D",
        {
            "normal": {
                "MotionCLIP": (4.96, 9.40, 12.48, 17.46, 26.46, 43.00, 3.52, 7.28, 9.74, 13.82, 22.34, 58.00),
                "MotionSet": (8.26, 18.69, 35.83, 48.91, 56.32, 16.00, 10.17, 21.33, 37.39, 51.25, 58.97, 13.00),
                "LAVIMO 3-modal": (21.25, 41.38, 50.51, 63.40, 77.50, 3.00, 25.76, 45.36, 54.71, 66.87, 79.73, 3.00),
            },
            "threshold": {
                "MotionCLIP": (7.10, 12.62, 16.67, 22.56, 32.23, 29.00, 5.71, 9.20, 12.35, 17.41, 28.00, 38.00),
                "MotionSet": (15.63, 31.17, 40.22, 52.93, 65.47, 8.00, 17.68, 35.82, 43.11, 54.25, 66.99, 7.00),
                "LAVIMO 3-modal": (30.42, 46.97, 56.82, 68.77, 81.41, 3.00, 35.43, 52.73, 61.93, 72.95, 84.54, 2.00),
            },
            "dissimilar": {
                "MotionCLIP": (42.00, 61.00, 72.00, 80.00, 88.00, 2.00, 43.00, 65.00, 69.00, 76.00, 86.00, 2.00),
                "MotionSet": (58.00, 69.00, 81.00, 89.00, 97.00, 2.00, 59.00, 73.00, 86.00, 90.00, 98.00, 2.00),
                "LAVIMO 3-modal": (
                    74.00,
                    93.00,
                    98.00,
                    100.00,
                    100.00,
                    1.00,
                    79.00,
                    99.00,
                    100.00,
                    100.00,
                    100.00,
                    1.00,
                ),
            },
        },
    ),
    PublishedTable(
        4,
        "kitml",
        VIDEO,
        "Video-to-motion retrieval on KIT-ML",
        {
            "normal": {
                "MotionCLIP": (3.71, 6.45, 8.79, 11.52, 17.97, 52.50, 4.49, 7.23, 9.96, 12.11, 21.68, 51.00),
                "MotionSet": (9.15, 23.96, 35.27, 46.18, 61.31, 13.00, 11.08, 24.27, 35.03, 45.29, 60.53, 13.00),
                "LAVIMO 3-modal": (18.75, 35.16, 42.58, 55.86, 73.24, 4.00, 23.05, 35.55, 44.14, 56.25, 72.07, 4.00),
            },
            "threshold": {
                "MotionCLIP": (8.98, 12.11, 14.84, 19.53, 27.73, 27.00, 9.18, 12.50, 17.19, 22.27, 33.98, 21.00),
                "MotionSet": (20.17, 35.21, 43.38, 55.39, 69.42, 6.00, 24.57, 37.66, 48.29, 59.72, 70.71, 5.00),
                "LAVIMO 3-modal": (36.91, 49.80, 60.94, 70.70, 84.57, 3.00, 41.41, 52.73, 63.28, 75.98, 86.13, 2.00),
            },
            "dissimilar": {
                "MotionCLIP": (15.00, 23.00, 31.00, 40.00, 59.00, 8.00, 13.00, 21.00, 25.00, 41.00, 63.00, 6.00),
                "MotionSet": (40.00, 58.00, 73.00, 85.00, 89.00, 2.00, 40.00, 60.00, 73.00, 82.00, 87.00, 2.00),
                "LAVIMO 3-modal": (66.00, 84.00, 90.00, 96.00, 99.00, 1.00, 66.00, 87.00, 93.00, 98.00, 100.00, 1.00),
            },
        },
    ),
)


def published_rows(dataset: str | None = None) -> list[PublishedRow]:
    """Every row of Tables 1-4 (of one dataset), in table order."""
    return [
        PublishedRow(table.dataset, method, table.directions, table.number, table.values(method))
        for table in TABLES
        if dataset is None or table.dataset == dataset
        for method in table.methods()
    ]
