"""A self-contained HTML report of one sweep: ablation tables and plots, read back from MLflow.

``write_report(sweep, out_dir)`` writes ``out_dir/index.html`` and every figure twice, as
``out_dir/figures/<name>.png`` and ``.pdf``. The HTML needs nothing else: CSS is inline, every
figure is embedded as a base64 ``data:image/png`` URI, and a Content-Security-Policy forbids any
network fetch (the PDF links are plain relative links to the files next to it). A short inline
script records page errors and whether every image decoded into ``<body data-...>`` attributes,
which is how the end-to-end test checks the page in headless Chromium; it changes nothing a
reader sees.

Sections: the ablation table(s) (mean ± std over seeds), each searched parameter against each
report metric, ID vs OOD accuracy with WiSE-FT curves and the zero-shot point, the Pareto front in
the ID-OOD plane (``dashboards.frontier_section``), Optuna parameter
importances and the optimisation history (TPE / random sweeps), and per-epoch learning curves
(``dashboards.curves_section``: aggregated past ``CURVE_TRIALS`` trials, as the page says). The
trial runs are read once (``results.read_launch``) and every section works from them; the
learning curves' histories come in bulk (``sweeper.tracking.bulk_reads``).

The searcher and the search dimensions come from the parent run's tags ``sweeper.searcher`` and
``sweeper.search_dims`` (JSON of the sweep file's ``search`` section), as ``results.sweep_meta``
decodes them. When a parent run lacks them,
the report says so, treats the searcher as unknown (importances are still computed) and infers the
distributions from the values the trials used.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dashboards import plots
from dashboards.curves_section import CURVE_METRICS, curves_section
from dashboards.frontier_section import frontier_section
from dashboards.report_sections import FigureEntry, Section, ablation_section, file_name, with_config_labels
from dashboards.search_section import SEARCHER_TAG, optuna_section
from dashboards.study import CONFIG
from sweeper.run.files import write_text_atomic
from sweeper.tables.reference_rows import reference_mask

if TYPE_CHECKING:
    from sweeper.tracking.launches import Launch

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
DPI = 110


class _Builder:
    """Collects sections and writes figures; one per ``write_report`` call."""

    def __init__(self, out_dir: Path, progress: Progress, task: Any) -> None:
        self.out_dir = out_dir
        self.figures_dir = out_dir / "figures"
        self.progress, self.task = progress, task
        self.used: set[str] = set()

    def step(self, text: str) -> None:
        self.progress.console.print(f"[dim]report:[/dim] {text}", highlight=False)
        self.progress.update(self.task, description=text)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def save(self, figure, name: str, title: str, caption: str = "") -> FigureEntry:
        stem = file_name(name)
        base, k = stem, 2
        while stem in self.used:
            stem, k = f"{base}-{k}", k + 1
        self.used.add(stem)
        png, pdf = self.figures_dir / f"{stem}.png", self.figures_dir / f"{stem}.pdf"
        figure.savefig(png, dpi=DPI, format="png")
        figure.savefig(pdf, format="pdf", metadata={"CreationDate": None})
        figure.clear()
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        self.progress.console.print(f"[dim]report:[/dim]   wrote figures/{stem}.png, .pdf", highlight=False)
        return FigureEntry(
            stem, title, caption, f"data:image/png;base64,{encoded}", f"figures/{stem}.png", f"figures/{stem}.pdf"
        )


def _end_times(trials: list[Any]) -> dict[str, int]:
    """Run id -> end time (ms) of the launch's trials (for the completion order)."""
    return {run.info.run_id: run.info.end_time or 0 for run in trials}


def _report_columns(meta: dict[str, Any], df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Rows and metrics as ``sweeper report`` chooses them by default."""
    report = meta.get("report") or {}
    objective = meta.get("objective") or {}
    rows = list(report.get("rows") or meta.get("search_keys") or [])
    if report.get("metrics"):
        metrics = list(report["metrics"])
    else:
        known = df.attrs.get("metrics", [])
        target = objective.get("metric")
        metrics = [target] if target in known else [m for m in known if not m.startswith("train/")]
    return rows, metrics


def write_report(
    sweep: str,
    out_dir: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    *,
    parent_run_id: str | None = None,
    console: Console | None = None,
    launch: Launch | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/figures/*.png|.pdf`` for ``sweep``; returns the page.

    Reads the sweep's latest launch (or ``parent_run_id``) from ``tracking_uri`` (default: the
    ``mlflow.db`` in the working directory), or the runs of ``launch`` already read (``sweeper
    report --html`` passes those its tables came from). Progress goes to ``console`` (default: stderr).
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from sweeper.tracking import results
    from trainables.errors import InputError

    console = console or Console(stderr=True)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("out_dir", f"{str(out_dir)!r} exists and is not a folder")
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("reading MLflow", total=8)
        build = _Builder(out_dir, progress, task)

        build.step(f"reading sweep {sweep!r} from MLflow")
        # Read once: a launch starting meanwhile cannot mix two sweeps, and no section reads again.
        launch = launch or results.read_launch(sweep, tracking_uri, experiment, parent_run_id)
        parent, pinned = launch.parent, launch.parent.info.run_id
        meta = {**results.meta_of(launch.client, parent), "sweep": sweep}
        df = results.frame_of(launch)
        if df.empty:
            raise InputError("sweep", f"sweep {sweep!r} (parent run {pinned}) has no trial runs yet")
        tags = parent.data.tags
        objective = meta.get("objective") or {}
        search_keys = [k for k in (meta.get("search_keys") or []) if k != "seed"]
        rows, metrics = _report_columns(meta, df)
        searcher = meta.get("searcher") or tags.get(SEARCHER_TAG)
        dims = meta.get("search_dims")
        if not isinstance(dims, dict):  # absent (an older launch) or not decodable
            dims = None
        labelled = with_config_labels(df, search_keys)
        build.step(
            f"{len(df)} trials, {labelled[CONFIG].nunique()} configurations, searcher {searcher or 'not recorded'}"
        )
        build.advance()
        sections: list[Section] = []

        build.step("ablation tables")
        sections.append(ablation_section(df, rows, metrics, search_keys, objective, meta.get("references")))
        # Reference trials are rows of the tables and points of the scatter, not samples of the search.
        swept = df[~reference_mask(df)].reset_index(drop=True)
        swept.attrs = dict(df.attrs)
        build.advance()

        build.step("searched parameters vs report metrics")
        effects = Section("parameters", "Searched parameters vs report metrics")
        plot_metrics = [m for m in metrics if m in df.columns]
        for key in search_keys:
            if key not in df.columns or df[key].notna().sum() == 0:
                effects.notes.append(f"{key}: no trial recorded a value.")
                continue
            log = (
                bool(dims[key].get("log"))
                if dims and key in dims and ("int" in dims[key] or "float" in dims[key])
                else None
            )
            figure = plots.param_effects(swept, key, plot_metrics, log=log)
            effects.figures.append(
                build.save(
                    figure,
                    f"param_{key}",
                    f"{key} vs report metrics",
                    "Mean ± std over seeds per value (bars); grey dots are single trials.",
                )
            )
        if not search_keys:
            effects.notes.append("The sweep searched no parameters.")
        sections.append(effects)
        build.advance()

        build.step("ID vs OOD scatter")
        scatter = Section("id-ood", "ID vs OOD accuracy")
        if {"id/acc", "ood/avg_acc"} <= set(df.columns):
            methods = df["method"].dropna().unique() if "method" in df.columns else []
            colour_by = "method" if len(methods) > 1 else next((r for r in rows if r in df.columns), None)
            figure = plots.id_ood_scatter(labelled, colour_by, wise_by=CONFIG)
            caption = "One point per trial."
            if plots.wise_alphas(df):
                caption += " Lines: WiSE-FT curves (mean over seeds per configuration), α from 0 (zero-shot) to 1."
            if "method" in df.columns and (df["method"] == plots.ZEROSHOT).any():
                caption += " Star: zero-shot."
            scatter.figures.append(build.save(figure, "id_vs_ood", "id/acc vs ood/avg_acc", caption))
        else:
            scatter.notes.append("The trials did not log both id/acc and ood/avg_acc.")
        sections.append(scatter)
        build.advance()

        build.step("Pareto front in the ID-OOD plane")
        sections.append(frontier_section(build.save, df, meta, search_keys, tracking_uri, launch))
        build.advance()

        build.step("Optuna importances and optimisation history")
        sections.append(
            optuna_section(
                build,
                with_config_labels(swept, search_keys),
                searcher,
                dims,
                search_keys,
                objective,
                lambda: _end_times(launch.trials),
            )
        )
        build.advance()

        build.step("learning curves")
        history = results.history_of(launch, list(CURVE_METRICS))
        sections.append(curves_section(build.save, history, labelled, objective))
        build.advance()

        build.step("writing index.html")
        environment = Environment(
            loader=FileSystemLoader(str(TEMPLATE_DIR)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        page = environment.get_template(TEMPLATE).render(
            sweep=sweep,
            meta=meta,
            searcher=searcher or "not recorded",
            trials=len(df),
            configs=int(labelled[CONFIG].nunique()),
            statuses=", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items()),
            objective=objective,
            rows=rows,
            metrics=metrics,
            sections=sections,
        )
        index = out_dir / "index.html"
        write_text_atomic(index, page)
        build.advance()
        build.step(f"done: {index}")
    return index
