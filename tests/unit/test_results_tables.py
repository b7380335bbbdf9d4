"""sweeper.tracking.results / sweeper.tables / `sweeper report` / `sweeper ui` against a small sqlite MLflow store.

The store follows the tracking conventions: a parent run per sweep launch, a child run per trial.
Sweep "abl" was launched twice (the newer launch has L in {1,2,4} x seeds {0,1}); sweep "other"
shares another experiment and has one FAILED trial.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.commands.ui import is_loopback, ui_command
from sweeper.tables import ablation, display, formats
from sweeper.tracking import results
from trainables.errors import InputError

REPORT = {"rows": ["L"], "metrics": ["id/acc", "ood/avg_acc", "id/ece"]}


def final(L: int, seed: int) -> dict[str, float]:
    """The last logged value of each metric of trial (L, seed); acc best at L=4, ece best at L=1."""
    k = math.log2(L)
    return {
        "id/acc": 0.5 + 0.1 * k + 0.01 * seed,
        "ood/avg_acc": 0.3 + 0.05 * k - 0.02 * seed,
        "id/ece": 0.05 + 0.02 * k + 0.004 * seed,
        "train/loss": 1.0 / L + 0.1 * seed,
    }


def _parent(client: MlflowClient, exp: str, sweep: str, start: int) -> str:
    tags = {
        "sweeper.kind": "sweep",
        "sweeper.sweep": sweep,
        "sweeper.config_hash": f"h-{sweep}",
        "sweeper.report": json.dumps(REPORT),
        "sweeper.search_keys": json.dumps(["L"]),
        "sweeper.objective": json.dumps({"metric": "ood/avg_acc", "mode": "max"}),
    }
    run_id = client.create_run(exp, start_time=start, tags=tags, run_name=sweep).info.run_id
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _child(
    client: MlflowClient,
    exp: str,
    sweep: str,
    parent: str,
    trial: str,
    L: int,
    seed: int,
    status: str = "FINISHED",
    extra: dict | None = None,
) -> str:
    tags = {
        "mlflow.parentRunId": parent,
        "sweeper.kind": "trial",
        "sweeper.sweep": sweep,
        "sweeper.trial_id": trial,
        "sweeper.method": "lipsum_ft",
        "sweeper.seed": str(seed),
        "sweeper.config_hash": f"c-{L}",
        "sweeper.git_sha": "abc",
        "sweeper.versions": "{}",
    }
    run_id = client.create_run(exp, tags=tags, run_name=trial).info.run_id
    params = {
        "L": L,
        "M": 80,
        "loss": "mse",
        "lam": 1.0,
        "lr": 3e-4,
        "epochs": 2,
        "method": "lipsum_ft",
        "seed": seed,
        **(extra or {}),
    }
    now = int(time.time() * 1000)
    metrics = [Metric(k, v - 0.1, now, 0) for k, v in final(L, seed).items()]  # step 0: a worse value
    metrics += [Metric(k, v, now + 1, 1) for k, v in final(L, seed).items()]
    client.log_batch(
        run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()], tags=[RunTag("note", "x")]
    )
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("abl", artifact_location=str(root / "artifacts"))
    shared = client.create_experiment("shared", artifact_location=str(root / "artifacts"))
    old = _parent(client, exp, "abl", start=1_000)
    _child(client, exp, "abl", old, "old_0", L=99, seed=0)
    new = _parent(client, exp, "abl", start=2_000)
    for L in (1, 2, 4):
        for seed in (0, 1):
            extra = {"tau": 0.5} if (L, seed) == (2, 1) else None  # a conditional param
            _child(client, exp, "abl", new, f"t_{L}_{seed}", L, seed, extra=extra)
    other = _parent(client, shared, "other", start=3_000)
    _child(client, shared, "other", other, "o_0", 1, 0)
    _child(client, shared, "other", other, "o_1", 1, 1, status="FAILED")
    paper = _parent(client, exp, "paper", start=4_000)
    for method in ("ft", "ours"):
        for seed in (0, 1):
            _paper_child(client, exp, paper, method, seed)
    return {"uri": uri, "old": old, "new": new, "root": root}


def paper_metrics(method: str, seed: int) -> dict[str, float]:
    """Two OOD domains, compat and a 3-point WiSE curve; ours is .1 better, seed 1 adds .02."""
    s = (0.1 if method == "ours" else 0.0) + 0.02 * seed
    out = {
        "id/acc": 0.8 + s,
        "id/ece": 0.05,
        "ood/clipart/acc": 0.5 + s,
        "ood/sketch/acc": 0.4 + s,
        "ood/avg_acc": 0.45 + s,
        "compat/v1/acc": 0.7 + s,
        "compat/v2/acc": 0.6 + s,
        "compat/hmean": 0.65 + s,
    }
    for alpha, w in (("0.0", 0.0), ("0.5", 0.5), ("1.0", 1.0)):
        out[f"wise/{alpha}/id/acc"] = 0.6 + 0.2 * w + s
        out[f"wise/{alpha}/ood/avg_acc"] = 0.4 + 0.1 * w * (1 - w) * 4 + s
    return out


def _paper_child(client: MlflowClient, exp: str, parent: str, method: str, seed: int) -> None:
    tags = {
        "mlflow.parentRunId": parent,
        "sweeper.kind": "trial",
        "sweeper.sweep": "paper",
        "sweeper.trial_id": f"{method}_{seed}",
        "sweeper.config_hash": f"c-{method}",
    }
    run_id = client.create_run(exp, tags=tags, run_name=f"{method}_{seed}").info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, 0, 0) for k, v in paper_metrics(method, seed).items()],
        params=[Param("method", method), Param("seed", str(seed)), Param("lr", "0.001")],
    )
    client.set_terminated(run_id, "FINISHED")


@pytest.fixture(scope="module")
def frame(store: dict) -> pd.DataFrame:
    return results.load("abl", store["uri"])


def test_load_is_one_typed_row_per_trial_of_latest_launch(frame: pd.DataFrame, store: dict) -> None:
    assert len(frame) == 6 and frame.attrs["parent_run_id"] == store["new"]
    assert list(frame.columns[:8]) == [
        "sweep",
        "run_id",
        "trial_id",
        "status",
        "method",
        "seed",
        "config_hash",
        "duration_s",
    ]
    assert frame["L"].dtype == "int64" and frame["seed"].dtype == "int64" and frame["epochs"].dtype == "int64"
    assert frame["lr"].dtype == "float64" and frame["lr"].iloc[0] == pytest.approx(3e-4)
    assert set(frame["loss"]) == {"mse"} and set(frame["method"]) == {"lipsum_ft"}
    assert sorted(zip(frame["L"], frame["seed"], strict=True)) == [(1, 0), (1, 1), (2, 0), (2, 1), (4, 0), (4, 1)]
    for _, row in frame.iterrows():
        for metric, value in final(row["L"], row["seed"]).items():
            assert row[metric] == pytest.approx(value)  # the final (step 1) value, not step 0
    assert frame["tau"].dtype == "float64"
    tau = frame.set_index("trial_id")["tau"]
    assert tau["t_2_1"] == 0.5 and tau.drop("t_2_1").isna().all()
    assert "note" not in frame.columns and "tau" in frame.attrs["params"]
    assert frame.attrs["metrics"] == ["id/acc", "id/ece", "ood/avg_acc", "train/loss"]


def test_parent_run_id_selects_an_older_launch(store: dict) -> None:
    old = results.load("abl", store["uri"], parent_run_id=store["old"])
    assert list(old["L"]) == [99]
    with pytest.raises(InputError) as error:
        results.load("other", store["uri"], parent_run_id=store["old"])
    assert error.value.where == "--parent-run"


def test_sweeps_are_found_across_and_within_experiments(store: dict) -> None:
    assert len(results.load("other", store["uri"])) == 2
    assert len(results.load("other", store["uri"], experiment="shared")) == 2
    with pytest.raises(InputError, match="known sweeps: other"):
        results.load("abl", store["uri"], experiment="shared")
    with pytest.raises(InputError, match=r"known experiments: .*abl"):
        results.load("abl", store["uri"], experiment="nope")


def test_unknown_sweep_lists_known_ones(store: dict) -> None:
    with pytest.raises(InputError) as error:
        results.load("nope", store["uri"])
    assert error.value.where == "sweep" and "'nope'" in str(error.value)
    assert "known sweeps: abl, other, paper" in str(error.value)


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "./mlruns", "sqlite:////no/such/dir/mlflow.db"])
def test_unusable_uri_is_an_input_error(uri: str) -> None:
    with pytest.raises(InputError) as error:
        results.load("abl", uri)
    assert error.value.where == "--tracking-uri"


def test_history_and_meta(store: dict) -> None:
    history = results.load_history("abl", store["uri"], metrics=["id/acc"])
    assert list(history.columns) == ["run_id", "trial_id", "metric", "step", "value"]
    assert len(history) == 12 and set(history["step"]) == {0, 1}
    run = history[history["trial_id"] == "t_4_1"].set_index("step")["value"]
    assert run[1] == pytest.approx(final(4, 1)["id/acc"]) and run[0] == pytest.approx(run[1] - 0.1)
    meta = results.sweep_meta("abl", store["uri"])
    assert meta["parent_run_id"] == store["new"] and meta["status"] == "FINISHED"
    assert meta["report"] == REPORT and meta["search_keys"] == ["L"] and meta["experiment"] == "abl"
    assert meta["objective"] == {"metric": "ood/avg_acc", "mode": "max"} and meta["config_hash"] == "h-abl"


def test_natural_types() -> None:
    assert results.natural(["1", None, "3"]).dtype == "Int64"
    assert results.natural(["1", "2.5"]).dtype == "float64"
    assert list(results.natural(["True", "False"])) == [True, False]
    text = results.natural(["mse", "None"])
    assert text.iloc[0] == "mse" and pd.isna(text.iloc[1])


def test_ablation_table_matches_hand_computation(frame: pd.DataFrame) -> None:
    table = ablation.ablation_table(frame, ["L"], REPORT["metrics"])
    assert list(table.columns) == [
        "L",
        "id/acc mean",
        "id/acc std",
        "id/acc ci",
        "ood/avg_acc mean",
        "ood/avg_acc std",
        "ood/avg_acc ci",
        "id/ece mean",
        "id/ece std",
        "id/ece ci",
        "n",
    ]
    assert list(table["L"]) == [1, 2, 4] and list(table["n"]) == [2, 2, 2]
    for i, L in enumerate((1, 2, 4)):
        for m in REPORT["metrics"]:
            a, b = final(L, 0)[m], final(L, 1)[m]
            assert table[f"{m} mean"].iloc[i] == pytest.approx((a + b) / 2)
            assert table[f"{m} std"].iloc[i] == pytest.approx(abs(a - b) / math.sqrt(2))  # ddof=1
            # n=2: t_{0.975,1} = 12.7062, half-width t * std / sqrt(2) = 12.7062 * |a - b| / 2
            assert table[f"{m} ci"].iloc[i] == pytest.approx(12.7062 * abs(a - b) / 2)
    best = display.best_rows(table)
    assert best == {"id/acc": {2}, "ood/avg_acc": {2}, "id/ece": {0}}  # max acc at L=4, min ece at L=1
    assert display.best_rows(table, modes={"id/acc": "min"})["id/acc"] == {0}


def test_conditional_rows_single_row_and_per_metric_n(frame: pd.DataFrame) -> None:
    table = ablation.ablation_table(frame, ["L", "tau"], ["id/acc"])
    assert list(table["L"]) == [1, 2, 2, 4] and list(table["n"]) == [2, 1, 1, 2]
    assert table["tau"].iloc[1] == 0.5 and table["tau"].isna().sum() == 3
    assert math.isnan(table["id/acc std"].iloc[1])  # one seed: std unknown
    whole = ablation.ablation_table(frame, [], ["id/acc"])
    assert list(whole["config"]) == ["all"] and whole["n"].iloc[0] == 6
    assert whole["id/acc mean"].iloc[0] == pytest.approx(frame["id/acc"].mean())
    gappy = frame.copy()
    gappy.loc[0, "id/ece"] = math.nan  # a trial that never logged ece
    table = ablation.ablation_table(gappy, ["L"], ["id/acc", "id/ece"])
    assert "n" not in table.columns and list(table["id/acc n"]) == [2, 2, 2]
    assert sorted(table["id/ece n"]) == [1, 2, 2]
    assert "(n=1)" in formats.to_markdown(table)


def test_bad_names_and_modes(frame: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="unknown metric 'id/nope'; available: id/acc"):
        ablation.ablation_table(frame, ["L"], ["id/nope"])
    with pytest.raises(InputError, match="unknown row parameter 'K'"):
        ablation.ablation_table(frame, ["K"], ["id/acc"])
    with pytest.raises(InputError, match="'max' or 'min'"):
        ablation.ablation_table(frame, ["L"], ["id/acc"], modes={"id/acc": "best"})


def test_renderings(frame: pd.DataFrame) -> None:
    table = ablation.ablation_table(frame, ["L"], REPORT["metrics"])
    acc4 = f"{(final(4, 0)['id/acc'] + final(4, 1)['id/acc']) / 2:.3f}"
    std4 = f"{abs(final(4, 0)['id/acc'] - final(4, 1)['id/acc']) / math.sqrt(2):.3f}"
    ece1 = f"{(final(1, 0)['id/ece'] + final(1, 1)['id/ece']) / 2:.3f}"
    markdown = formats.to_markdown(table)
    assert f"**{acc4} ± {std4}**" in markdown and f"**{ece1} ± " in markdown
    assert markdown.count("**") == 2 * 3 and markdown.splitlines()[0].rstrip().endswith(" n |")
    latex = formats.to_latex(table)
    assert latex.startswith(r"\begin{tabular}{lrrrr}") and r"\toprule" in latex and r"\bottomrule" in latex
    assert rf"\textbf{{{acc4} $\pm$ {std4}}}" in latex and r"ood/avg\_acc" in latex
    assert not re.search(r"[^\\]_", latex)  # every underscore escaped
    assert latex.count(r"\textbf") == 3
    text = formats.to_text(table, title="abl")
    assert f"{acc4} ± {std4}" in text and "id/acc" in text
    assert "\x1b[1m" in formats.to_text(table, color=True)  # bold in a terminal
    back = pd.read_csv(io.StringIO(formats.to_csv(table)))
    assert list(back.columns) == list(table.columns)
    assert back["id/acc mean"].tolist() == table["id/acc mean"].tolist()  # full precision survives


def test_report_csv_on_stdout(
    store: dict, frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", "abl", "--tracking-uri", store["uri"], "--format", "csv"]) == 0
    out = capsys.readouterr().out
    printed = pd.read_csv(io.StringIO(out))
    expected = ablation.ablation_table(frame, REPORT["rows"], REPORT["metrics"])
    pd.testing.assert_frame_equal(printed, expected, check_dtype=False)
    assert (tmp_path / "sweeps" / "abl" / "report" / "abl.csv").read_text() == out


def test_report_writes_files_and_notes_unfinished(store: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_dir = tmp_path / "rep"
    assert main(["report", "other", "--tracking-uri", store["uri"], "--out", str(out_dir)]) == 0
    captured = capsys.readouterr()
    assert "other" in captured.out and "1 FAILED" in captured.err
    assert {p.name for p in out_dir.iterdir()} == {"other.csv", "other.md", "other.tex", "other.html"}
    assert (out_dir / "other.csv").read_text().splitlines()[1].endswith(",2")
    assert (
        main(
            [
                "report",
                "other",
                "--tracking-uri",
                store["uri"],
                "--out",
                str(out_dir),
                "--finished-only",
                "--rows",
                "",
                "--metrics",
                "id/acc",
                "--format",
                "markdown",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "| all " in captured.out and f"{final(1, 0)['id/acc']:.3f}" in captured.out
    assert "±" not in captured.out  # one seed left: no std
    assert "\\begin{tabular}" in (out_dir / "other.tex").read_text()


def test_report_bad_metric_exits_2(store: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        ["report", "abl", "--tracking-uri", store["uri"], "--metrics", "id/acc,id/nope", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--metrics" in err and "id/nope" in err and "ood/avg_acc" in err
    assert main(["report", "abl", "--tracking-uri", store["uri"], "--rows", "K", "--out", str(tmp_path)]) == 2
    assert "--rows" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written on bad input


def test_ui_command_and_remote_refusal(capsys: pytest.CaptureFixture) -> None:
    uri = "sqlite:////abs/mlflow.db"
    assert ui_command(uri, "127.0.0.1", 5000) == [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        "5000",
    ]
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert main(["ui", "--tracking-uri", uri, "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_report_layouts_stats_and_deltas(store: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The paper sweep: method x 2 seeds; its report.rows (from the shared parent helper) are ["L"],
    which this sweep does not log, so the default rows of the paper layouts are just ["method"]."""
    common = ["--tracking-uri", store["uri"], "--out", str(tmp_path)]
    assert main(["report", "paper", *common, "--layout", "domains", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table["method"]) == ["ft", "ours"] and list(table["n"]) == [2, 2]
    assert table["ood/sketch/acc mean"].tolist() == pytest.approx([0.41, 0.51])
    assert table["ood/sketch/acc ci"].tolist() == pytest.approx([12.7062 * 0.02 / 2] * 2)
    assert {p.name for p in tmp_path.iterdir()} >= {"paper_domains.csv", "paper_domains.tex", "paper_domains.html"}

    assert (
        main(
            [
                "report",
                "paper",
                *common,
                "--layout",
                "compat",
                "--rows",
                "method",
                "--delta",
                "method=ft",
                "--format",
                "latex",
                "--stat",
                "ci",
            ]
        )
        == 0
    )
    latex = capsys.readouterr().out
    assert r"method & v1 & v2 & HM & n \\" in latex
    assert rf"\textbf{{0.760 $\pm$ {12.7062 * 0.02 / 2:.3f}}} ($+$0.100)" in latex

    assert main(["report", "paper", *common, "--layout", "wise", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in markdown.splitlines()[2:]] == ["0.0", "0.5", "1.0"]
    assert "OOD avg acc (method=ours)" in markdown.splitlines()[0]  # methods are kept apart by default
    assert "**0.510 ± 0.014**" in markdown and "**0.610 ± 0.014**" in markdown  # OOD peaks at alpha .5
    assert main(["report", "paper", *common, "--layout", "wise", "--columns", "", "--format", "csv"]) == 0
    pooled = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(pooled["n"]) == [4, 4, 4] and pooled["ood/avg_acc mean"].iloc[1] == pytest.approx(0.56)

    assert (
        main(
            [
                "report",
                "abl",
                *common,
                "--rows",
                "",
                "--columns",
                "L",
                "--metrics",
                "id/acc",
                "--format",
                "html",
                "--delta",
                "L=1",
            ]
        )
        == 0
    )
    html = capsys.readouterr().out
    assert html.startswith('<table class="sweeper-table">') and '<th colspan="1">L=4</th>' in html
    delta = final(4, 0)["id/acc"] - final(1, 0)["id/acc"]
    assert f"<b>{final(4, 0)['id/acc'] + 0.005:.3f} &plusmn; " in html and f"(+{delta:.3f})" in html


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["--layout", "nope"], "--layout"),
        (["--layout", "domains"], "--layout"),  # abl logs no ood/<domain>/acc
        (["--layout", "sessions"], "--layout"),  # abl is not a continual sweep: no session/<k>/ metrics
        (["--layout", "wise", "--rows", "L"], "--rows"),
        (["--layout", "compat", "--metrics", "id/acc"], "--metrics"),
        (["--delta", "L=3"], "--delta"),
        (["--delta", "nonsense"], "--delta"),
        (["--columns", "K"], "--columns"),
        (["--precision", "-1"], "--precision"),
    ],
)
def test_report_bad_layout_options_exit_2(
    store: dict, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], where: str
) -> None:
    assert main(["report", "abl", "--tracking-uri", store["uri"], "--out", str(tmp_path), *argv]) == 2
    assert f"sweeper: error: {where}:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_report_html_calls_the_dashboard(
    store: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    calls = []

    def write_report(
        sweep: str,
        out_dir: Path,
        *,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        launch: results.Launch | None = None,
    ) -> Path:
        # The runs the tables came from, not read a second time.
        assert launch is not None and launch.parent.info.run_id == store["new"] and len(launch.trials) == 6
        calls.append((sweep, out_dir, tracking_uri, experiment))
        return Path(out_dir) / "index.html"

    fake = type(sys)("dashboards.report")
    fake.write_report = write_report
    monkeypatch.setitem(sys.modules, "dashboards.report", fake)
    assert (
        main(
            [
                "report",
                "abl",
                "--tracking-uri",
                store["uri"],
                "--out",
                str(tmp_path / "t"),
                "--experiment",
                "abl",
                "--html",
                str(tmp_path / "h"),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert calls == [("abl", tmp_path / "h", store["uri"], "abl")]
    captured = capsys.readouterr()
    assert f"wrote {tmp_path / 'h' / 'index.html'}" in captured.err and "index.html" not in captured.out


def test_every_calibration_and_likelihood_name_is_lower_is_better() -> None:
    # Every name a trial logs (metric_checks' families, averaged or per domain, under last/ and
    # wise/<alpha>/ too, and the continual sessions' metrics): ECE, NLL, losses, forgetting and parameter
    # counts rank low; the rest high.
    from sweeper.tables.ablation import default_mode

    lower = [
        "id/ece",
        "id/nll",
        "val/ece",
        "val/nll",
        "ood/avg_ece",
        "ood/sketch/ece",
        "ood/sketch/nll",
        "oodval/avg_ece",
        "oodval/painting/ece",
        "oodval/painting/nll",
        "train/loss",
        "train/ce",
        "params/trainable",
        "params/trainable_fraction",
        "params/visual_fraction",
        "last/id/ece",
        "last/ood/avg_ece",
        "last/params/trainable",
        "wise/0.5/id/nll",
        "wise/0.5/ood/avg_ece",
        "session/2/forgetting",
        "continual/forgetting",
    ]
    higher = [
        "id/acc",
        "val/acc",
        "ood/avg_acc",
        "ood/sketch/acc",
        "oodval/avg_acc",
        "oodval/painting/acc",
        "zs/colour/acc",
        "compat/v1/acc",
        "compat/v2/acc",
        "compat/hmean",
        "compat/v2/ood_avg_acc",
        "lp/train_acc",
        "last/val/acc",
        "wise/0.5/id/acc",
        "wise/1.0/ood/avg_acc",
        "session/2/target_gain",
        "session/2/retention_change",
        "continual/avg_acc",
    ]
    assert {m: default_mode(m) for m in lower} == {m: "min" for m in lower}
    assert {m: default_mode(m) for m in higher} == {m: "max" for m in higher}


def test_report_marks_an_oracle_selected_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("o", artifact_location=str(tmp_path / "artifacts"))
    for sweep, oracle in (("honest", False), ("oracle", True)):
        parent = _parent(client, exp, sweep, start=1_000)
        client.set_tag(
            parent, "sweeper.objective", json.dumps({"metric": "ood/avg_acc", "mode": "max", "oracle": oracle})
        )
        _child(client, exp, sweep, parent, f"{sweep}_0", L=1, seed=0)
    for sweep, oracle in (("honest", False), ("oracle", True)):
        assert main(["report", sweep, "--tracking-uri", uri, "--out", str(tmp_path / sweep)]) == 0
        shown = " ".join(capsys.readouterr().out.split())  # the caption wraps to the table's width
        assert ("oracle selection on the test metric ood/avg_acc" in shown) == oracle
        assert main(["report", sweep, "--tracking-uri", uri, "--out", str(tmp_path / sweep), "--format", "csv"]) == 0
        assert ("note: oracle selection" in capsys.readouterr().err) == oracle
