"""`sweeper report --layout pareto` against a sqlite MLflow store with known answers.

Sweep "front" (objectives val/acc and oodval/avg_acc, both max; searched lr; 2 seeds; 2 epochs):

    config   val/acc (seeds)  oodval/avg_acc   on the front?
    A 1e-3   .80 .82 -> .81   .50 .52 -> .51   yes
    A WiSE α=0.5    -> .78           -> .58    yes (added by the curve)
    B 1e-4   .70 .72 -> .71   .60 .62 -> .61   yes
    D 3e-4   .70 .72 -> .71   .60 .62 -> .61   yes (a tie with B)
    C 1e-5   .60 .60 -> .60   .55 .57 -> .56   no (B dominates it)
    E 1e-2   seed 0 FAILED at .99/.99, seed 1 stopped after 1 of 2 epochs (ASHA) at .55/.70: left out

The zero-shot point (every trial's zeroshot/val/acc, zeroshot/oodval/avg_acc) is (.55, .45).
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.tables.completion import complete_mask
from sweeper.tables.frontier import POINT, ROBUSTNESS, TRAINED, frontier
from sweeper.tables.robustness_lines import zero_shot_line
from sweeper.tracking import results

OBJECTIVES = [{"metric": "val/acc", "mode": "max", "oracle": False}, {"metric": "oodval/avg_acc", "mode": "max"}]
SWEEP_YAML = "name: front\nmethod: ft\ndata:\n  source: shapes\n  id: photo\n  ood: [clipart, sketch]\n"
ZS = {"zeroshot/val/acc": 0.55, "zeroshot/oodval/avg_acc": 0.45, "zeroshot/id/acc": 0.55, "zeroshot/ood/avg_acc": 0.46}
# (lr, seed) -> (val/acc, oodval/avg_acc, id/acc, ood/avg_acc)
TRIALS = {
    (1e-3, 0): (0.80, 0.50, 0.85, 0.40),
    (1e-3, 1): (0.82, 0.52, 0.87, 0.42),
    (1e-4, 0): (0.70, 0.60, 0.75, 0.50),
    (1e-4, 1): (0.72, 0.62, 0.77, 0.52),
    (3e-4, 0): (0.70, 0.60, 0.75, 0.50),
    (3e-4, 1): (0.72, 0.62, 0.77, 0.52),
    (1e-5, 0): (0.60, 0.55, 0.65, 0.45),
    (1e-5, 1): (0.60, 0.57, 0.65, 0.47),
}
# WiSE-FT curve of A, per seed: alpha -> (val/acc, oodval/avg_acc, id/acc, ood/avg_acc)
WISE_A = {
    0: {"0.0": (0.55, 0.57, 0.55, 0.46), "0.5": (0.77, 0.57, 0.80, 0.50), "1.0": (0.79, 0.49, 0.84, 0.39)},
    1: {"0.0": (0.55, 0.59, 0.55, 0.46), "0.5": (0.79, 0.59, 0.82, 0.52), "1.0": (0.81, 0.51, 0.86, 0.41)},
}
NAMES = ("val/acc", "oodval/avg_acc", "id/acc", "ood/avg_acc")


def _trial(
    client: MlflowClient,
    exp: str,
    parent: str,
    trial: str,
    lr: float,
    seed: int,
    values: dict[str, float],
    status: str = "FINISHED",
    epochs_logged: int = 2,
) -> None:
    tags = {"mlflow.parentRunId": parent, "sweeper.kind": "trial", "sweeper.sweep": "front", "sweeper.trial_id": trial}
    tags["sweeper.config_hash"] = f"c-{lr}"
    run_id = client.create_run(exp, tags=tags, run_name=trial).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k, values[k] - 0.1, now, step) for step in range(epochs_logged) for k in ("val/acc", "id/acc")]
    metrics += [Metric("train/loss", 1.0, now, step) for step in range(epochs_logged)]
    if epochs_logged == 2 and status == "FINISHED":  # the summary, one step past the last epoch
        metrics += [Metric(k, v, now + 1, 2) for k, v in {**values, "best_epoch": 1.0}.items()]
        client.set_tag(run_id, "sweeper.summary_step", "2")
    else:
        metrics += [Metric(k, v, now + 1, epochs_logged - 1) for k, v in values.items()]
    params = {"lr": lr, "epochs": 2, "method": "ft", "seed": seed}
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(run_id, status)


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("front", artifact_location=str(root / "artifacts"))
    tags = {
        "sweeper.kind": "sweep",
        "sweeper.sweep": "front",
        "sweeper.objective": json.dumps(OBJECTIVES[0]),
        "sweeper.objectives": json.dumps(OBJECTIVES),
        "sweeper.posthoc": json.dumps({"wise": {"alphas": [0.0, 0.5, 1.0]}}),
        "sweeper.search_keys": json.dumps(["lr"]),
        "mlflow.note.content": f"Sweep `front`:\n\n```yaml\n{SWEEP_YAML}\n```",
    }
    parent = client.create_run(exp, tags=tags, run_name="front").info.run_id
    for (lr, seed), point in TRIALS.items():
        values = {**dict(zip(NAMES, point, strict=True)), **ZS}
        if lr == 1e-3:
            for alpha, wise in WISE_A[seed].items():
                values.update({f"wise/{alpha}/{k}": v for k, v in zip(NAMES, wise, strict=True)})
        _trial(client, exp, parent, f"t_{lr}_{seed}", lr, seed, values)
    failed = {**dict.fromkeys(NAMES, 0.99), **ZS}
    _trial(client, exp, parent, "t_e_0", 1e-2, 0, failed, status="FAILED")
    stopped = {"val/acc": 0.55, "oodval/avg_acc": 0.70, "id/acc": 0.55, "ood/avg_acc": 0.60, **ZS}
    _trial(client, exp, parent, "t_e_1", 1e-2, 1, stopped, epochs_logged=1)
    client.set_terminated(parent, "FINISHED")
    return uri


def _csv(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[pd.DataFrame, str]:
    assert main(["report", "front", *argv, "--layout", "pareto", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    return pd.read_csv(io.StringIO(captured.out)), captured.err


def test_front_rows_ties_seed_spread_and_wise_marks(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    front, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path)], capsys)
    # Best val/acc first; B and D tie exactly and both stay; C and every unfinished trial are out.
    assert list(zip(front["lr"], front[POINT], strict=True)) == [
        (1e-3, TRAINED),
        (1e-3, "WiSE α=0.5"),
        (1e-4, TRAINED),
        (3e-4, TRAINED),
    ]
    assert front["val/acc mean"].tolist() == pytest.approx([0.81, 0.78, 0.71, 0.71])
    assert front["oodval/avg_acc mean"].tolist() == pytest.approx([0.51, 0.58, 0.61, 0.61])
    assert front["val/acc std"].iloc[0] == pytest.approx(math.sqrt(2) * 0.01)  # sample std of .80, .82
    assert front["n"].tolist() == [2, 2, 2, 2] and front["wise_alpha"].iloc[1] == 0.5
    # Beside the validation objectives: the test metrics of the same models (the curve's own at α).
    assert front["id/acc mean"].tolist() == pytest.approx([0.86, 0.81, 0.76, 0.76])
    assert front["ood/avg_acc mean"].tolist() == pytest.approx([0.41, 0.51, 0.51, 0.51])
    assert "4 of " in err and "(1 from WiSE-FT curves)" in err and "mean ± sample std over seeds" in err


def test_hypervolume_against_the_zero_shot_point(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path)], capsys)
    # Union of the rectangles from (.55, .45) to (.81, .51), (.78, .58), (.71, .61):
    # .03 x .06 + .07 x .13 + .16 x .16 = .0365; without the WiSE point .10 x .06 + .16 x .16 = .0316.
    assert "reference point: (0.5500, 0.4500), the zero-shot point" in err
    assert "hypervolume: 0.03650 (trained models alone: 0.03160" in err
    _, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path), "--reference-point", "0.7,0.5"], capsys)
    # From (.7, .5): .03 x .01 + .07 x .08 + .01 x .11 = .0070.
    assert "reference point: (0.7000, 0.5000), the --reference-point" in err and "hypervolume: 0.00700" in err


def test_unfinished_trials_are_left_out_and_listed(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    front, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path)], capsys)
    assert 1e-2 not in front["lr"].tolist()
    assert "left out of the front: 2 trial(s)" in err
    assert "t_e_0: lr=0.01 seed=0: FAILED, 2 of 2 epochs" in err
    assert "t_e_1: lr=0.01 seed=1: stopped early (no summary after the last epoch; e.g. ASHA), 1 of 2 epochs" in err
    frame = results.load("front", uri)
    assert complete_mask(frame).sum() == 8  # the FINISHED trial without a summary is not complete


def test_effective_robustness_against_the_zero_shot_line(
    uri: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    front, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path)], capsys)
    # Through chance (.1, .1) (ten shape classes) and the zero-shot test point (.55, .46): slope .8.
    assert "zero-shot line through chance (0.1, 0.1) and the zero-shot point (0.5500, 0.4600)" in err
    expected = 0.41 - (0.1 + (0.86 - 0.1) * 0.8)
    assert front[f"{ROBUSTNESS} mean"].iloc[0] == pytest.approx(expected)


def test_line_fitted_on_a_csv(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    points = tmp_path / "points.csv"
    points.write_text("model,id,ood\nm1,0.5,0.3\nm2,0.8,0.6\n")
    front, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path), "--line", str(points)], capsys)
    # Two points, so the least-squares line passes through both: at logit(ID) = 0, logit(OOD) = logit(.3).
    slope = (math.log(0.6 / 0.4) - math.log(0.3 / 0.7)) / math.log(0.8 / 0.2)
    intercept = math.log(0.3 / 0.7)
    assert f"slope {slope:.4f}, intercept {intercept:.4f}" in err and "over 2 points" in err
    seeds = [(0.85, 0.40), (0.87, 0.42)]  # A's test points: robustness is averaged over seeds
    line_at = [1 / (1 + math.exp(-(slope * math.log(i / (1 - i)) + intercept))) for i, _ in seeds]
    expected = sum(o - at for (_, o), at in zip(seeds, line_at, strict=True)) / 2
    assert front[f"{ROBUSTNESS} mean"].iloc[0] == pytest.approx(expected)
    headerless = tmp_path / "bare.csv"
    headerless.write_text("0.5,0.3\n# a comment\n0.8,0.6\n")
    _, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path), "--line", str(headerless)], capsys)
    assert f"slope {slope:.4f}, intercept {intercept:.4f}" in err


def test_zoo_line_evaluates_each_zoo_model_on_the_sweeps_data(
    uri: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeper.tables import zoo_points

    seen = []

    def fake(model: str, data: dict, device: str) -> tuple[float, float]:
        seen.append((model, data["id"], tuple(data["ood"])))
        return (0.5, 0.3) if model.endswith("v1") else (0.8, 0.6)

    monkeypatch.setattr(zoo_points, "evaluate_zero_shot", fake)
    _, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path), "--line", "zoo"], capsys)
    assert seen == [
        ("zoo/tiny-clip-v1", "photo", ("clipart", "sketch")),
        ("zoo/tiny-clip-v2", "photo", ("clipart", "sketch")),
    ]
    assert "over 2 points (zoo: tiny-clip-v1, tiny-clip-v2)" in err


def test_files_and_terminal_table(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["report", "front", "--tracking-uri", uri, "--out", str(out), "--layout", "pareto"]) == 0
    shown = capsys.readouterr().out
    assert "WiSE α=0.5" in shown and "hypervolume: 0.03650" in shown and "eff. robustness" in shown
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"front_pareto{s}" for s in (".csv", ".html", ".md", ".tex", "_summary.txt")]
    markdown = (out / "front_pareto.md").read_text()
    assert "id/acc (test)" in markdown and markdown.count("\n") == 2 + 4
    assert "hypervolume" in (out / "front_pareto_summary.txt").read_text()


def test_metrics_flag_and_modes(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Test metrics chosen by hand: both max (accuracies); the WiSE curve of A adds its α=0.5 point.
    front, err = _csv(["--tracking-uri", uri, "--out", str(tmp_path), "--metrics", "id/acc,ood/avg_acc"], capsys)
    assert "front of id/acc (max) x ood/avg_acc (max)" in err
    assert (1e-3, "WiSE α=0.5") in list(zip(front["lr"], front[POINT], strict=True))
    assert "(test)" not in (tmp_path / "front_pareto.md").read_text()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--metrics", "val/acc"], "--metrics"),
        (["--metrics", "val/acc,id/nope"], "--metrics"),
        (["--reference-point", "0.5,abc"], "--reference-point"),
        (["--reference-point", "0.5"], "--reference-point"),
        (["--reference-point", "0.5,nan"], "--reference-point"),
        (["--line", "no/such/points.csv"], "--line"),
    ],
)
def test_bad_input_exits_2_naming_the_flag(
    uri: str, tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], flag: str
) -> None:
    code = main(["report", "front", "--tracking-uri", uri, "--out", str(tmp_path), "--layout", "pareto", *argv])
    assert code == 2 and f"sweeper: error: {flag}:" in capsys.readouterr().err


def test_pareto_flags_are_refused_by_other_layouts(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["report", "front", "--tracking-uri", uri, "--out", str(tmp_path), "--line", "zoo"])
    assert code == 2 and "sweeper: error: --line: only --layout pareto" in capsys.readouterr().err


def test_bad_points_csv(tmp_path: Path) -> None:
    from sweeper.tables.robustness_lines import fitted_line, read_points_csv
    from trainables.errors import InputError

    for text, message in [
        ("a,b\n0.5,0.3\n", "needs columns 'id' and 'ood'"),
        ("0.5,30\n0.6,0.4\n", "outside [0, 1]"),
        ("0.5\n", "expected an ID and an OOD"),
        ("", "holds no points"),
    ]:
        path = tmp_path / "p.csv"
        path.write_text(text)
        with pytest.raises(InputError, match=re.escape(message)) as error:
            read_points_csv(path)
        assert error.value.where == "--line"
    with pytest.raises(InputError, match="different ID accuracies"):
        fitted_line([(0.5, 0.3), (0.5, 0.4)], "p.csv")


def _frame(rows: list[tuple]) -> pd.DataFrame:
    columns = ["method", "seed", "status", "best_epoch", "id/acc", "ood/avg_acc"]
    return pd.DataFrame(rows, columns=columns)


def test_a_single_point_and_exact_ties_without_mlflow() -> None:
    one = frontier(_frame([("ft", 0, "FINISHED", 1.0, 0.7, 0.5)]), ["id/acc", "ood/avg_acc"], reference=[0.5, 0.4])
    assert len(one.front) == 1 and one.hypervolume == pytest.approx(0.2 * 0.1)
    assert math.isnan(one.front["id/acc std"].iloc[0])  # one seed: the spread is unknown, not 0
    tied = _frame([("a", 0, "FINISHED", 1.0, 0.7, 0.5), ("b", 0, "FINISHED", 1.0, 0.7, 0.5)])
    assert frontier(tied, ["id/acc", "ood/avg_acc"]).front["method"].tolist() == ["a", "b"]


def test_reference_trials_are_their_own_configuration_and_results_exposes_frontier() -> None:
    df = _frame([("ft", 0, "FINISHED", 1.0, 0.7, 0.5), ("ft", 0, "FINISHED", 1.0, 0.6, 0.6)])
    df["lr"], df["reference"] = [1e-3, 1e-3], [None, "ft"]
    front = results.frontier(df, ["id/acc", "ood/avg_acc"], labels=["lr"]).front
    assert front["method"].tolist() == ["ft", "ft (reference)"] and list(front.columns[:2]) == ["method", "lr"]


def test_frontier_line_and_zero_shot_reference_from_zeroshot_trials() -> None:
    df = _frame([("zeroshot", 0, "FINISHED", 0.0, 0.55, 0.46), ("ft", 0, "FINISHED", 1.0, 0.86, 0.41)])
    result = frontier(df, ["id/acc", "ood/avg_acc"], line=zero_shot_line(0.55, 0.46, 0.1))
    assert result.reference == [0.55, 0.46] and "zeroshot trials" in result.reference_source
    # Both are on the front; zero-shot sits on its own line, so its effective robustness is 0.
    robustness = dict(zip(result.front["method"], result.front[f"{ROBUSTNESS} mean"], strict=True))
    assert robustness["zeroshot"] == pytest.approx(0.0) and robustness["ft"] == pytest.approx(-0.298)


def test_html_report_section_draws_the_frontier(uri: str) -> None:
    from dashboards.frontier_section import frontier_section

    saved = []

    def save(figure, name: str, title: str, caption: str) -> str:
        gids = {a.get_gid() for a in [*figure.axes[0].collections, *figure.axes[0].lines]}
        saved.append((name, gids, caption))
        return name

    section = frontier_section(save, results.load("front", uri), results.sweep_meta("front", uri), ["lr"], uri)
    assert section.figures == ["frontier"] and not section.notes
    _, gids, caption = saved[0]
    assert {"trials", "unfinished", "front", "zero-shot", "line", "wise:lr=0.001"} <= gids
    assert "front of val/acc x oodval/avg_acc" in caption and "zero-shot line through chance (0.1, 0.1)" in caption
    assert "Hollow: 2 trial(s)" in caption


def test_a_curves_alpha_1_is_the_trained_point_once_and_robustness_refers_to_0() -> None:
    df = _frame([("ft", 0, "FINISHED", 1.0, 0.8, 0.5), ("lipsum_ft", 0, "FINISHED", 1.0, 0.7, 0.6)])
    df["robustness/effective"] = [-0.1, 0.05]
    df["zeroshot/id/acc"] = [0.55, 0.55]
    for alpha, w in (("0.5", 0.5), ("1.0", 1.0)):
        df[f"wise/{alpha}/id/acc"] = 0.55 + w * (df["id/acc"] - 0.55)
        df[f"wise/{alpha}/robustness/effective"] = w * df["robustness/effective"] + 0.2 * w * (1 - w)
    result = frontier(df, ["id/acc", "robustness/effective"])
    points = set(zip(result.front["method"], result.front["point"], strict=True))
    # alpha = 1 repeats each trained point: the front holds it once, as "trained"; the table keeps
    # the whole curve for the figure.
    assert points == {("ft", "trained"), ("lipsum_ft", "trained"), ("lipsum_ft", "WiSE α=0.5")}
    assert result.candidates == 4 and len(result.table) == 6
    # Zero-shot CLIP sits on its own line: the reference point's robustness coordinate is 0.
    assert result.reference == [0.55, 0.0]
