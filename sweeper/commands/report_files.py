"""What ``sweeper report`` writes besides stdout: the table files of ``--out`` and the HTML
report of ``--html``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.run.files import write_text_atomic
from trainables.errors import InputError

if TYPE_CHECKING:  # pandas and mlflow load only when a report runs: `sweeper --help` stays fast
    import pandas as pd

    from sweeper.tracking.launches import Launch


def write_files(table: pd.DataFrame, out: Path, stem: str, stat: str = "std", precision: int = 3) -> list[Path]:
    """``<stem>.csv``, ``.md``, ``.tex`` and ``.html`` in ``out`` (created if needed)."""
    from sweeper.tables import formats

    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, fmt in ((".csv", "csv"), (".md", "markdown"), (".tex", "latex"), (".html", "html")):
        path = out / f"{stem}{suffix}"
        write_text_atomic(path, formats.render(table, fmt, stat, precision))
        paths.append(path)
    return paths


def write_html_report(args: argparse.Namespace, launch: Launch | None = None) -> Path:
    """``dashboards.report.write_report`` into ``--html`` (of ``launch``, the runs the tables came
    from, when given); returns the path it wrote."""
    try:
        from dashboards.report import write_report
    except ModuleNotFoundError as error:
        raise InputError(
            "--html", f"the HTML report needs dashboards.report, which cannot be imported: {error}"
        ) from error
    pinned = {"parent_run_id": args.parent_run} if args.parent_run else {}  # the launch the tables came from
    return Path(
        write_report(
            args.name, args.html, tracking_uri=args.tracking_uri, experiment=args.experiment, launch=launch, **pinned
        )
    )
