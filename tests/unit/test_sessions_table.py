"""The sessions layout (``sweeper.tables.sessions``, ``sweeper report --layout sessions``) and the
accuracy matrix, on hand-made continual trials whose numbers are worked out in the comments.

Two methods x two seeds x three sessions, plus a zero-shot reference trial that logged no session
metric. The zero-shot model's accuracy on the sessions' test data is .50, .55, .60. Accuracy
matrices (row k: after session k; column j: on session j's test data):

    ft seed 0        ft seed 1         ours seed 0       ours seed 1
    .60              .62               .58               .60
    .50 .70          .50 .72           .56 .66           .56 .68
    .40 .60 .80      .40 .60 .82       .54 .64 .74       .54 .64 .76

target gain (diagonal minus zero-shot): ft .10 .15 .20 / .12 .17 .22 -> means .11 .16 .21;
ours .08 .11 .14 / .10 .13 .16 -> means .09 .12 .15; every std .02 / sqrt(2) = .0141421.
forgetting at k (mean over j < k of the best earlier accuracy on j minus the accuracy on j now):
ft seed 0: k=2 .60-.50 = .10; k=3 ((.60-.40) + (.70-.60)) / 2 = .15; seed 1: .12 and .17;
ours seed 0: .02 and (.04 + .02) / 2 = .03; seed 1: .04 and .05.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from sweeper.cli import main
from sweeper.tables import display, formats, sessions
from sweeper.tracking import results
from trainables.errors import InputError

ZERO_SHOT = (0.50, 0.55, 0.60)
MATRICES = {
    ("ft", 0): [[0.60], [0.50, 0.70], [0.40, 0.60, 0.80]],
    ("ft", 1): [[0.62], [0.50, 0.72], [0.40, 0.60, 0.82]],
    ("ours", 0): [[0.58], [0.56, 0.66], [0.54, 0.64, 0.74]],
    ("ours", 1): [[0.60], [0.56, 0.68], [0.54, 0.64, 0.76]],
}


def trial_metrics(method: str, seed: int, retention: bool = True) -> dict[str, float]:
    """What a continual trial logs, by the definitions (see the module notes for the numbers)."""
    acc = MATRICES[(method, seed)]
    out: dict[str, float] = {}
    for k, row in enumerate(acc, start=1):
        for j, value in enumerate(row, start=1):
            out[f"session/{k}/acc/{j}"] = value
        out[f"session/{k}/target_acc"] = row[k - 1]
        out[f"session/{k}/target_gain"] = row[k - 1] - ZERO_SHOT[k - 1]
        out[f"session/{k}/seen_acc"] = sum(row) / k
        if k >= 2:
            drops = [max(acc[earlier][j] for earlier in range(j, k - 1)) - row[j] for j in range(k - 1)]
            out[f"session/{k}/forgetting"] = sum(drops) / len(drops)
        if retention:  # ft loses .02 per session (.01 more with seed 1), ours .005
            out[f"session/{k}/retention_change"] = (-0.02 * k - 0.01 * seed) if method == "ft" else -0.005 * k
    last = len(acc)
    out["continual/avg_acc"] = out[f"session/{last}/seen_acc"]
    out["continual/forgetting"] = out[f"session/{last}/forgetting"]
    out["continual/target_gain"] = sum(out[f"session/{k}/target_gain"] for k in range(1, last + 1)) / last
    if retention:
        out["continual/retention_change"] = out[f"session/{last}/retention_change"]
    out["continual/sessions"] = last
    return out


def continual_frame(retention: bool = True) -> pd.DataFrame:
    """As ``results.load`` returns it: one row per trial, the zero-shot reference first."""
    rows: list[dict] = [{"method": "zeroshot", "seed": 0, "status": "FINISHED", "id/acc": 0.5}]
    for method, seed in MATRICES:
        rows.append({"method": method, "seed": seed, "status": "FINISHED", **trial_metrics(method, seed, retention)})
    frame = pd.DataFrame(rows)
    frame.attrs = {"params": ["method", "seed"], "metrics": sorted(c for c in frame.columns if "/" in c)}
    return frame


def test_forgetting_by_the_definition_matches_the_hand_numbers() -> None:
    assert trial_metrics("ft", 0)["session/3/forgetting"] == pytest.approx(0.15)
    assert trial_metrics("ft", 1)["session/3/forgetting"] == pytest.approx(0.17)
    assert trial_metrics("ours", 1)["session/2/forgetting"] == pytest.approx(0.04)
    assert "session/1/forgetting" not in trial_metrics("ft", 0)


def test_sessions_table_means_std_n_and_columns() -> None:
    df = continual_frame()
    assert sessions.session_count(df) == 3
    table = sessions.sessions_table(df)
    assert list(table["method"]) == ["ft", "ours"] and list(table["n"]) == [2, 2]  # zero-shot left out
    gains = [f"session/{k}/target_gain" for k in (1, 2, 3)]
    forgetting = [f"session/{k}/forgetting" for k in (1, 2, 3)]
    summary = ["continual/avg_acc", "continual/forgetting", "continual/target_gain", "continual/retention_change"]
    assert table.attrs["metrics"] == [*gains, *forgetting, *summary]
    assert table.attrs["modes"]["session/2/forgetting"] == "min" == table.attrs["modes"]["continual/forgetting"]
    assert table.attrs["modes"]["session/2/target_gain"] == "max"
    assert [table[f"{m} mean"].tolist() for m in gains] == [
        pytest.approx([0.11, 0.09]),
        pytest.approx([0.16, 0.12]),
        pytest.approx([0.21, 0.15]),
    ]
    assert table["session/1/target_gain std"].tolist() == pytest.approx([0.0141421] * 2, abs=1e-6)
    assert table["session/2/forgetting mean"].tolist() == pytest.approx([0.11, 0.03])
    assert table["session/3/forgetting mean"].tolist() == pytest.approx([0.16, 0.04])
    # continual/avg_acc (seen acc after session 3): ft (1.8 / 3 + 1.82 / 3) / 2, ours (1.92 / 3 + 1.94 / 3) / 2
    assert table["continual/avg_acc mean"].tolist() == pytest.approx([0.6033333, 0.6433333])
    # session 1 logged no forgetting: its columns are there, empty
    assert table[["session/1/forgetting mean", "session/1/forgetting std"]].isna().all().all()
    # the CSV keeps the order: labels, then mean/std/ci per metric, then n
    header = formats.to_csv(table).splitlines()[0].split(",")
    assert header[:4] == [
        "method",
        "session/1/target_gain mean",
        "session/1/target_gain std",
        "session/1/target_gain ci",
    ]
    assert header[-1] == "n"


def test_markdown_shows_dashes_and_marks_forgetting_lowest_best() -> None:
    markdown = formats.to_markdown(sessions.sessions_table(continual_frame()))
    lines = markdown.splitlines()
    assert re.sub(r"\s+", " ", lines[0]) == (
        "| method | target gain S1 | target gain S2 | target gain S3 | forgetting S1 | forgetting S2 | "
        "forgetting S3 | avg acc (all) | forgetting (all) | target gain (all) | retention change (all) | n |"
    )
    ft, ours = ([cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:])
    assert ft[0] == "ft" and ours[0] == "ours"
    assert ft[1] == "**0.110 ± 0.014**" and ours[1] == "<u>0.090 ± 0.014</u>"  # gains: highest best
    assert ft[4] == "–" and ours[4] == "–"  # no forgetting after the first session
    assert ours[5] == "**0.030 ± 0.014**" and ft[5] == "<u>0.110 ± 0.014</u>"  # forgetting: lowest best
    assert ours[8] == "**0.040 ± 0.014**"  # continual/forgetting, lowest best
    assert ours[10] == "**-0.015 ± 0.000**" and ft[10] == "<u>-0.065 ± 0.007</u>"  # retention: highest best
    assert ft[11] == "2"


def test_latex_and_html_reuse_the_renderers() -> None:
    table = sessions.sessions_table(continual_frame())
    latex = formats.to_latex(table)
    assert r"method & target gain S1 & target gain S2" in latex and "retention change (all) & n" in latex
    ours = next(line for line in latex.splitlines() if line.startswith("ours"))
    assert r"-- & \textbf{0.030 $\pm$ 0.014}" in ours
    html = formats.to_html(table)
    assert '<td style="text-align:right">&ndash;</td>' in html and "<b>0.030 &plusmn; 0.014</b>" in html


def test_metrics_choose_the_quantities_and_rows_may_be_other_params() -> None:
    df = continual_frame(retention=False)
    df["lr"] = [0.0, 1e-3, 1e-3, 1e-4, 1e-4]
    table = sessions.sessions_table(df, ["method", "lr"], ["seen_acc", "target_acc"])
    assert table.attrs["metrics"][:3] == [f"session/{k}/seen_acc" for k in (1, 2, 3)]
    assert "continual/retention_change" not in table.attrs["metrics"]  # not logged: no column
    g = display.grid(table)
    assert g.heads[3:6] == ["target acc S1", "target acc S2", "target acc S3"]
    assert g.label_names == ["method", "lr"] and g.n == [2, 2]
    # seen acc after session 2: ft (.60 + .61) / 2 = .605
    assert table["session/2/seen_acc mean"].iloc[0] == pytest.approx(0.605)
    delta = sessions.sessions_table(df, ["method"], ["target_gain"], delta={"method": "ft"})
    assert delta["session/3/target_gain delta"].tolist() == pytest.approx([math.nan, -0.06], nan_ok=True)


def test_bad_inputs_name_the_field() -> None:
    where = {"layout": "--layout", "metrics": "--metrics", "rows": "--rows"}
    plain = continual_frame().loc[[0], ["method", "seed", "status", "id/acc"]]
    with pytest.raises(InputError, match=r"needs session/<k>/\.\.\. metrics") as error:
        sessions.sessions_table(plain, where=where)
    assert error.value.where == "--layout"
    with pytest.raises(InputError, match="unknown session quantity 'acc'") as error:
        sessions.sessions_table(continual_frame(), quantities=["acc"], where=where)
    assert error.value.where == "--metrics"
    with pytest.raises(InputError, match="no trial logged session/<k>/retention_change"):
        sessions.sessions_table(continual_frame(retention=False), quantities=["retention_change"], where=where)
    with pytest.raises(InputError) as error:
        sessions.sessions_table(continual_frame(), ["L"], where=where)
    assert error.value.where == "--rows"


def test_accuracy_matrix_of_one_trial_and_of_the_mean() -> None:
    df = continual_frame()
    matrix = results.accuracy_matrix(df.iloc[1])  # ft seed 0
    assert matrix.shape == (3, 3)
    assert matrix.index.name == "after session" and matrix.columns.name == "on session"
    assert list(matrix.index) == [1, 2, 3] and list(matrix.columns) == [1, 2, 3]
    assert matrix.loc[3].tolist() == pytest.approx([0.40, 0.60, 0.80])
    assert matrix.loc[2, 1] == pytest.approx(0.50) and math.isnan(matrix.loc[1, 2]) and math.isnan(matrix.loc[2, 3])
    assert sessions.accuracy_matrix(df.iloc[[1]]).equals(matrix)  # a one-row frame
    mean = sessions.accuracy_matrix(df[df["method"] == "ours"].mean(numeric_only=True))
    assert mean.loc[2, 2] == pytest.approx(0.67) and mean.loc[3, 1] == pytest.approx(0.54)
    with pytest.raises(InputError, match="one trial"):
        sessions.accuracy_matrix(df)
    with pytest.raises(InputError, match="no session/<k>/acc/<j>"):
        sessions.accuracy_matrix(df.iloc[0])  # the zero-shot trial


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An MLflow sqlite store holding sweep ``cont``: the frame's five trials as runs of one launch."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("cont", artifact_location=str(root / "artifacts"))
    tags = {"sweeper.kind": "sweep", "sweeper.sweep": "cont", "sweeper.search_keys": json.dumps([])}
    parent = client.create_run(exp, run_name="cont", tags=tags).info.run_id
    client.set_terminated(parent, "FINISHED")
    for i, row in continual_frame().iterrows():
        method, seed = row["method"], row["seed"]
        trial = {"mlflow.parentRunId": parent, "sweeper.kind": "trial", "sweeper.sweep": "cont"}
        run = client.create_run(exp, run_name=f"t{i}", tags={**trial, "sweeper.trial_id": f"t{i}"}).info.run_id
        values = {k: v for k, v in row.items() if "/" in k and not pd.isna(v)}
        client.log_batch(
            run,
            metrics=[Metric(k, float(v), 0, 0) for k, v in values.items()],
            params=[Param("method", method), Param("seed", str(seed))],
        )
        client.set_terminated(run, "FINISHED")
    return uri


def test_report_layout_sessions_prints_and_writes_files(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["report", "cont", "--tracking-uri", store, "--out", str(tmp_path), "--layout", "sessions"]
    assert main([*common, "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table["method"]) == ["ft", "ours"] and list(table["n"]) == [2, 2]
    assert table["session/3/forgetting mean"].tolist() == pytest.approx([0.16, 0.04])
    assert {p.name for p in tmp_path.iterdir()} == {f"cont_sessions.{s}" for s in ("csv", "md", "tex", "html")}
    assert main([*common, "--metrics", "seen_acc", "--format", "markdown"]) == 0
    header = re.sub(r"\s+", " ", capsys.readouterr().out.splitlines()[0])
    assert header.startswith("| method | seen acc S1 | seen acc S2 | seen acc S3 | avg acc (all) |")
    assert main([*common]) == 0  # the terminal table
    assert "cont sessions: mean ± std over seeds" in capsys.readouterr().out
    assert main([*common, "--metrics", "nope"]) == 2
    assert "sweeper: error: --metrics: unknown session quantity 'nope'" in capsys.readouterr().err
