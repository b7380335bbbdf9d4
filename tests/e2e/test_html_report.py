"""The self-contained HTML report: real sweeps -> ``write_report`` -> headless Chromium.

How the page is checked in the browser (no extra Python packages, no DevTools websocket):
``chromium --headless --dump-dom --virtual-time-budget=5000`` loads ``index.html`` from disk, runs
the page's load handlers and prints the resulting DOM. The report carries a tiny inline script
that writes ``data-images-ok`` / ``data-images-broken`` (every ``<img>`` complete with
``naturalWidth > 0``) and ``data-page-errors`` (window errors, failed loads, CSP violations,
``console.error`` calls) onto ``<body>``; the test parses those attributes from the dump. As a
second, independent check, ``--enable-logging=stderr --v=0`` makes Chromium log every console
message of the page as an ``INFO:CONSOLE`` line; the report logs nothing, so there must be none
(a blocked network fetch would show up there too, from the page's Content-Security-Policy).
A second run with ``--screenshot`` saves ``screenshot.png`` next to the report.

The fast tests (not ``slow``) check the pure pieces on synthetic frames: the Optuna study rebuilt
from trials, the grid skip, the table rendering and every plot function.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from servers import REQUIRE_SERVICES

from dashboards import curves_section, plots
from dashboards import report as html_report
from dashboards.report_sections import table_html
from dashboards.search_section import optuna_section
from dashboards.study import importances_of, rebuild_study

TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["clipart", "sketch"],
}
CHROMIUM = shutil.which("chromium")
# Under .ci/run a missing browser is a failure, not a skip.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRE_SERVICES,
    reason="the `chromium` binary is not on PATH (Debian: apt-get install -y chromium); "
    "the HTML report is rendered in headless Chromium",
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# -- helpers ---------------------------------------------------------------------------------------


def write_sweep(folder: Path, name: str, **fields) -> Path:
    sweep = {
        "name": name,
        "model": "zoo/tiny-clip-v1",
        "data": TINY_DATA,
        "train": {"epochs": 2, "batch_size": 40, "lr": 1e-4},
        "seeds": [0],
        "resources": {"cpu": 1},
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


class _BodyAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "body" and self.body is None:
            self.body = {k: v or "" for k, v in attrs}


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def render_in_chromium(index: Path, tmp: Path) -> tuple[dict[str, str], list[str], Path]:
    """The ``<body>`` attributes after load, the page's console lines, and the screenshot path."""
    url = index.resolve().as_uri()
    dumped = chromium(
        tmp / "profile-dom", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", url
    )
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    parser = _BodyAttributes()
    parser.feed(dumped.stdout)
    assert parser.body is not None, f"no <body> in Chromium's DOM dump: {dumped.stdout[:500]!r}"
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    screenshot = index.parent / "screenshot.png"
    shot = chromium(
        tmp / "profile-shot",
        "--hide-scrollbars",
        "--window-size=1280,2000",
        "--virtual-time-budget=5000",
        f"--screenshot={screenshot}",
        url,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    return parser.body, console, screenshot


def check_self_contained(page: str, figures: Path) -> list[str]:
    """Every image is an embedded PNG, nothing points off the page but figures/; returns img names."""
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", page, re.I)
    assert "<link" not in page.lower() and not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert "@import" not in page and "url(" not in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    links = re.findall(r'<a href="([^"#][^"]*)"', page)
    assert links and all(link.startswith("figures/") and (figures.parent / link).is_file() for link in links)
    return re.findall(r'<figure id="fig-([^"]+)"', page)


def check_figures(out: Path, names: list[str]) -> None:
    for name in names:
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert pdf.read_bytes()[:5] == b"%PDF-", name
    on_disk = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert on_disk == sorted(names)
    assert sorted(p.stem for p in (out / "figures").glob("*.pdf")) == on_disk


def check_in_browser(index: Path, tmp: Path, figures: int) -> None:
    body, console, screenshot = render_in_chromium(index, tmp)
    assert body.get("data-images") == str(figures)
    assert body.get("data-images-ok") == "true", body
    assert body.get("data-images-broken") == "0"
    assert json.loads(html.unescape(body.get("data-page-errors", "missing"))) == []
    assert console == [], console
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000


# -- end to end ------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_chromium
def test_tpe_sweep_report_renders_in_chromium_with_importances(local_ray, workdir, capsys) -> None:
    from sweeper.cli import main

    # lr spans two decades so that the objective differs between configurations: on tiny data a
    # search over L alone can tie every trial, and importances of a flat objective are undefined.
    path = write_sweep(
        workdir,
        "tpe-html",
        method="lipsum_ft",
        fixed={"M": 8},
        searcher="tpe",
        num_samples=3,
        search_seed=3,
        search={"L": {"int": [1, 8]}, "lr": {"float": [1e-5, 1e-3], "log": True}},
        report={"rows": ["L"], "metrics": ["id/acc", "ood/avg_acc", "id/ece"]},
    )
    assert main(["launch", str(path)]) == 0
    capsys.readouterr()

    out = workdir / "html"
    index = html_report.write_report("tpe-html", out)
    assert index == out / "index.html"
    progress = capsys.readouterr().err
    assert "report:" in progress and "writing index.html" in progress and "done:" in progress

    page = index.read_text(encoding="utf-8")
    names = check_self_contained(page, out / "figures")
    assert names == [
        "param_L",
        "param_lr",
        "id_vs_ood",
        "frontier",
        "param_importances",
        "optimization_history",
        "learning_curves",
    ]
    check_figures(out, names)
    assert "<table" in page and "id/acc (max)" in page and "id/ece (min)" in page
    assert "Grid sweep" not in page and "does not record" not in page  # searcher and dims come from the parent
    check_in_browser(index, workdir, len(names))


@pytest.mark.slow
@needs_chromium
def test_grid_sweep_report_has_wise_curves_zero_shot_and_skips_optuna(local_ray, workdir) -> None:
    from sweeper.cli import main

    path = write_sweep(
        workdir,
        "grid-html",
        method={"grid": ["zeroshot", "ft", "wise_ft"]},
        fixed={"curve_step": 0.25},
        seeds=[0, 1],
        report={"rows": ["method"], "metrics": ["id/acc", "ood/avg_acc", "id/ece"]},
    )
    assert main(["launch", str(path)]) == 0

    out = workdir / "report-html"
    index = html_report.write_report("grid-html", out, tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    page = index.read_text(encoding="utf-8")
    names = check_self_contained(page, out / "figures")
    assert names == ["param_method", "id_vs_ood", "frontier", "learning_curves"]
    check_figures(out, names)
    # Mean ± std over the two seeds, n = 2, one row per method.
    assert page.count("± ") >= 9 and re.search(r"<td>wise_ft</td>", page)
    assert "WiSE-FT curves" in page and "Star: zero-shot" in page
    # The frontier: wise_ft's curve adds points; zero-shot comes from the zeroshot trials when the
    # trials do not log their own zeroshot/* point.
    assert "Pareto front in the ID–OOD plane" in page and "lines with α: WiSE-FT curves" in page
    assert "Grid sweep: every configuration was run" in page and "does not record" not in page
    mode = index.stat().st_mode & 0o777  # not mkstemp's 0600: as readable as the figures beside it
    assert mode == (out / "figures" / "id_vs_ood.png").stat().st_mode & 0o777
    check_in_browser(index, workdir, len(names))


# -- fast: the pure pieces -------------------------------------------------------------------------


def _trials() -> pd.DataFrame:
    """Three configurations of (L, loss, tau), two seeds each, one failed trial."""
    rows = []
    for k, (L, loss, tau, acc) in enumerate([(2, "mse", None, 0.50), (6, "kld", 1.5, 0.70), (4, "mse", None, 0.60)]):
        for seed in (0, 1):
            rows.append(
                {
                    "run_id": f"r{k}{seed}",
                    "trial_id": f"t{k}{seed}",
                    "status": "FINISHED",
                    "method": "lipsum_ft",
                    "seed": seed,
                    "config_hash": f"h{k}",
                    "L": L,
                    "loss": loss,
                    "tau": tau,
                    "lr": [1e-5, 1e-4, 1e-3][k],
                    "id/acc": acc + 0.1 + 0.01 * seed,
                    "ood/avg_acc": acc + 0.02 * seed,
                    "id/ece": 0.1 - 0.01 * k,
                }
            )
    rows[-1]["status"] = "FAILED"
    frame = pd.DataFrame(rows)
    frame["tau"] = frame["tau"].astype("float64")
    return frame


def test_rebuilt_study_has_one_trial_per_configuration_in_completion_order() -> None:
    df = html_report.with_config_labels(_trials(), ["L", "loss", "tau"])
    dims = {
        "L": {"int": [1, 8]},
        "loss": {"choice": ["mse", "kld"]},
        "tau": {"float": [0.5, 4.0], "when": {"loss": "kld"}},
    }
    ends = {"r00": 30, "r01": 31, "r10": 10, "r11": 12, "r20": 20, "r21": 99}
    rebuilt = rebuild_study(df, ["L", "loss", "tau"], dims, "ood/avg_acc", "max", ends)
    trials = rebuilt.study.trials
    assert rebuilt.labels == ["L=6, loss=kld, tau=1.5", "L=4, loss=mse", "L=2, loss=mse"]
    assert [t.value for t in trials] == pytest.approx([0.71, 0.60, 0.51])  # the failed seed is left out
    assert trials[0].params == {"L": 6, "loss": "kld", "tau": 1.5} and "tau" not in trials[1].params
    assert trials[0].distributions["L"] == optuna.distributions.IntDistribution(1, 8)
    assert any("1 trial(s) not finished" in note for note in rebuilt.notes)
    values, _ = importances_of(rebuilt.study)
    assert set(values) == {"L", "loss", "tau"} and sum(values.values()) == pytest.approx(1.0)


def test_without_logged_dims_the_distributions_are_inferred_from_the_trials() -> None:
    df = html_report.with_config_labels(_trials(), ["lr", "loss"])
    rebuilt = rebuild_study(df, ["lr", "loss"], None, "ood/avg_acc", "max")
    distributions = rebuilt.study.trials[0].distributions
    assert distributions["lr"] == optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)
    assert distributions["loss"] == optuna.distributions.CategoricalDistribution(["kld", "mse"])


def test_grid_sweeps_skip_the_optuna_section_with_a_note() -> None:
    df = html_report.with_config_labels(_trials(), ["L"])
    section = optuna_section(None, df, "grid", None, ["L"], {"metric": "ood/avg_acc", "mode": "max"}, lambda: {})
    assert section.figures == [] and section.notes[0].startswith("Grid sweep")


def test_ablation_table_html_bolds_the_best_mean_and_escapes_values() -> None:
    from sweeper.tables.ablation import ablation_table

    df = _trials()
    df["loss"] = df["loss"].replace({"kld": "<kld>"})
    table = ablation_table(df, ["loss"], ["id/acc", "id/ece"])
    text = table_html(table, {"id/acc": "max", "id/ece": "min"})
    assert "&lt;kld&gt;" in text and "<kld>" not in text
    assert "<strong>0.805 ± 0.007</strong>" in text  # kld: 0.80, 0.81
    assert "id/ece (min)" in text and "<th>n</th>" in text


def test_every_plot_function_returns_a_figure_that_saves(tmp_path) -> None:
    df = _trials()
    for alpha, shift in (("0.0", 0.0), ("0.5", 0.05), ("1.0", 0.1)):
        df[f"wise/{alpha}/id/acc"] = 0.4 + shift
        df[f"wise/{alpha}/ood/avg_acc"] = 0.45 + shift / 2
    df.loc[0, "method"] = "zeroshot"
    curves = pd.DataFrame(
        {
            "config": ["a", "a", "b"],
            "metric": ["id/acc", "id/acc", "id/acc"],
            "step": [0, 1, 0],
            "mean": [0.5, 0.6, 0.4],
            "std": [0.01, 0.02, float("nan")],
            "n": [2, 2, 1],
        }
    )
    lr = plots.param_effects(df, "lr", ["id/acc", "ood/avg_acc"])
    assert lr.axes[0].get_xscale() == "log"
    figures = [
        lr,
        plots.param_effects(df, "loss", ["id/acc"]),
        plots.id_ood_scatter(df, "loss", wise_by="config_hash"),
        plots.importances({"L": 0.7, "loss": 0.3}),
        plots.optimization_history([0.5, 0.4, 0.7], "max", "m"),
        curves_section.learning_curves(curves, ["id/acc", "ood/avg_acc"]),
    ]
    assert [line.get_linestyle() for line in figures[5].axes[0].lines] == ["-", "--"]  # b: one step only
    scatter = figures[2].axes[0]
    assert len([line for line in scatter.lines if len(line.get_xdata()) == 3]) == 3  # one WiSE curve per config
    for k, figure in enumerate(figures):
        assert isinstance(figure, Figure)
        figure.savefig(tmp_path / f"{k}.png", dpi=40)
        assert (tmp_path / f"{k}.png").stat().st_size > 1000
