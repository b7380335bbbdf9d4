"""Reference rows (``reference: [zeroshot, ft]``): table layout and deltas on hand-made frames, the
sweep-file checks (exit 2 naming ``reference``), and how reference trials enter the search.

Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sweeper.run.space import POINT, WithReferences, make_searcher, point_of
from sweeper.run.trial import run_name, trial_config
from sweeper.run.trial_entry import SweepContext
from sweeper.tables import display, formats, paper
from sweeper.tables.reference_rows import ablation_with_references
from trainables.errors import InputError


def frame() -> pd.DataFrame:
    """Lipsum-FT at L = 1 and 8 (two seeds each), FT and zero-shot references (two seeds each).

    ood/avg_acc  L=1: .60 .62 -> .61      L=8: .64 .66 -> .65
                 ft:  .50 .52 -> .51      zeroshot: .55 .55 -> .55 (std 0)
    """
    rows = [
        ("lipsum_ft", 1, 0, None, 0.60, 0.80),
        ("lipsum_ft", 1, 1, None, 0.62, 0.82),
        ("lipsum_ft", 8, 0, None, 0.64, 0.84),
        ("lipsum_ft", 8, 1, None, 0.66, 0.86),
        ("ft", None, 0, "ft", 0.50, 0.90),
        ("ft", None, 1, "ft", 0.52, 0.92),
        ("zeroshot", None, 0, "zeroshot", 0.55, 0.70),
        ("zeroshot", None, 1, "zeroshot", 0.55, 0.70),
    ]
    df = pd.DataFrame(rows, columns=["method", "L", "seed", "reference", "ood/avg_acc", "id/acc"])
    df["L"] = df["L"].astype("Int64")
    df.attrs = {"params": ["method", "seed", "L"], "metrics": ["id/acc", "ood/avg_acc"]}
    return df


def test_reference_rows_come_first_in_the_given_order_with_labels() -> None:
    table = ablation_with_references(frame(), ["L"], ["ood/avg_acc"], order=["zeroshot", "ft"])
    assert list(table["L"]) == ["zeroshot (reference)", "ft (reference)", 1, 8]
    assert table["ood/avg_acc mean"].tolist() == pytest.approx([0.55, 0.51, 0.61, 0.65])
    assert table["ood/avg_acc std"].iloc[0] == 0  # two equal seeds
    assert table["ood/avg_acc std"].iloc[1] == pytest.approx(0.0141421, abs=1e-6)
    assert list(table["n"]) == [2, 2, 2, 2]
    assert table.attrs["references"] == ["zeroshot (reference)", "ft (reference)"]
    # without an order the references are sorted by name
    assert list(ablation_with_references(frame(), ["L"], ["id/acc"])["L"])[:2] == [
        "ft (reference)",
        "zeroshot (reference)",
    ]


def test_delta_against_a_reference() -> None:
    table = ablation_with_references(
        frame(), ["L"], ["ood/avg_acc", "id/acc"], delta={"reference": "ft"}, order=["zeroshot", "ft"]
    )
    # zeroshot .55 - .51 = .04; ft itself none; L=1 .61 - .51 = .10; L=8 .65 - .51 = .14
    deltas = table["ood/avg_acc delta"].tolist()
    assert deltas[0] == pytest.approx(0.04) and math.isnan(deltas[1])
    assert deltas[2:] == pytest.approx([0.10, 0.14])
    # id/acc: ft .91; L=1 .81 -> -.10
    assert table["id/acc delta"].iloc[2] == pytest.approx(-0.10)
    text = formats.render(table, "markdown", "std", 3)
    assert "ft (reference)" in text and "+0.140" in text and "-0.100" in text


def test_row_value_deltas_still_work_and_leave_references_without_one() -> None:
    table = ablation_with_references(frame(), ["L"], ["ood/avg_acc"], delta={"L": 1})
    deltas = table["ood/avg_acc delta"].tolist()
    assert math.isnan(deltas[0]) and math.isnan(deltas[1]) and math.isnan(deltas[2])
    assert deltas[3] == pytest.approx(0.04)


def test_pivoted_table_repeats_reference_rows_under_every_column_group() -> None:
    df = frame()
    df["loss"] = ["mse", "kld", "mse", "kld", None, None, None, None]
    table = ablation_with_references(df, ["L"], ["ood/avg_acc"], columns=["loss"], delta={"reference": "zeroshot"})
    refs = table[table["L"] == "zeroshot (reference)"]
    assert sorted(refs["loss"]) == ["kld", "mse"] and refs["ood/avg_acc mean"].tolist() == pytest.approx([0.55] * 2)
    shown = display.grid(table)
    assert shown.groups == ["loss=kld", "loss=mse"] and len(shown.labels) == 4
    # L=1, kld: .62 - .55
    row = table[(table["L"] == 1) & (table["loss"] == "kld")]
    assert row["ood/avg_acc delta"].iloc[0] == pytest.approx(0.07)


def test_bad_reference_deltas_name_the_field() -> None:
    with pytest.raises(InputError, match="no reference row 'lp'") as error:
        ablation_with_references(frame(), ["L"], ["id/acc"], delta={"reference": "lp"}, where={"delta": "--delta"})
    assert error.value.where == "--delta"
    no_refs = frame()[frame()["reference"].isna()]
    no_refs.attrs = frame().attrs
    with pytest.raises(InputError, match="ran no reference methods"):
        ablation_with_references(no_refs, ["L"], ["id/acc"], delta={"reference": "ft"})
    with pytest.raises(InputError, match="not both"):
        ablation_with_references(frame(), ["L"], ["id/acc"], delta={"reference": "ft", "L": 1})


def test_without_references_the_table_is_the_plain_ablation() -> None:
    df = frame()
    df = df[df["reference"].isna()].drop(columns="reference")
    df.attrs = frame().attrs
    plain = paper.layout_table("ablation", df, rows=["L"], metrics=["id/acc"])
    assert list(plain["L"]) == [1, 8] and "references" not in plain.attrs


def write_sweep(folder: Path, extra: str) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(
        "name: refs\nmethod: lipsum_ft\ndata: {id: photo, ood: [sketch]}\n"
        "search: {L: {grid: [1, 8]}}\nseeds: [0, 1]\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("reference: [nope]\n", "reference[0]", "unknown method 'nope'"),
        ("reference: [ft, ft]\n", "reference[1]", "listed twice"),
        ("reference: [lipsum_ft]\n", "reference[0]", "the sweep's own method"),
        ("reference: ft\n", "reference", "valid list"),
        ("reference: [ft]\nscheduler: asha\n", "reference", "asha would stop reference trials"),
        (
            "reference: [ft]\nobjective: {metric: wise/alpha_val}\nposthoc: {wise: {}}\n",
            "reference[0]",
            "does not report the objective",
        ),
        ("reference: [ft]\nreport: {delta: {reference: zeroshot}}\n", "report.delta.reference", "not a reference"),
        ("reference: [ft]\nreport: {delta: {M: 8}}\n", "report.delta.M", "not a report row"),
    ],
)
def test_bad_references_are_input_errors_naming_the_field(tmp_path: Path, extra: str, where: str, message: str) -> None:
    from sweeper.spec import loading

    with pytest.raises(InputError, match=message) as error:
        loading.load(write_sweep(tmp_path, extra))
    assert error.value.where.endswith(where), error.value.where


def test_a_reference_that_does_not_fit_the_model_is_refused(tmp_path: Path, monkeypatch) -> None:
    from sweeper.spec import loading
    from trainables import registry

    def refuse(params, context_length):
        raise InputError("n_ctx", f"too long for context length {context_length}")

    monkeypatch.setattr(registry.params("coop"), "check_model", refuse)
    with pytest.raises(InputError, match="cannot run on this sweep's model") as error:
        loading.load(write_sweep(tmp_path, "reference: [coop]\n"))
    assert error.value.where.endswith("reference[0]")


def test_validate_counts_reference_trials(tmp_path: Path) -> None:
    from sweeper.spec.grid import trial_count
    from sweeper.spec.loading import load

    loaded = load(write_sweep(tmp_path, "reference: [zeroshot, ft]\nreport: {delta: {reference: ft}}\n"))
    assert trial_count(loaded) == (2 + 2) * 2
    assert loaded.reference == ["zeroshot", "ft"]


def test_grid_runs_reference_points_first_once_per_seed() -> None:
    references = [{"method": "ft", "reference": "ft"}]
    _, space, num_samples, total = make_searcher(
        "grid",
        [{"L": 1}, {"L": 8}],
        {"L": {"grid": [1, 8]}},
        {},
        [0, 1],
        1,
        [("val/acc", "max")],
        references=references,
    )
    points = space[POINT]["grid_search"]
    assert total == 6 and num_samples == 1
    assert points[:2] == [
        {"method": "ft", "reference": "ft", "seed": 0},
        {"method": "ft", "reference": "ft", "seed": 1},
    ]


def test_optuna_search_gets_no_reference_result(tmp_path: Path) -> None:
    references = [{"method": "ft", "reference": "ft"}]
    searcher, _, num_samples, total = make_searcher(
        "tpe", [], {"L": {"int": [1, 16]}}, {}, [0, 1], 3, [("val/acc", "max")], references=references
    )
    assert isinstance(searcher, WithReferences) and total == num_samples == 3 * 2 + 2
    searcher.set_search_properties("val/acc", "max", {})
    first, second = searcher.suggest("r0"), searcher.suggest("r1")
    assert point_of(first) == point_of(second) == {"method": "ft", "reference": "ft"}
    seen = []
    searcher.inner.on_trial_complete = lambda trial_id, result=None, error=False: seen.append(trial_id)
    searcher.on_trial_complete("r0", {"val/acc": 0.9})
    assert seen == []  # the reference's score never reaches the searcher
    suggested = searcher.suggest("t0")
    assert "L" in suggested and "reference" not in point_of(suggested)
    searcher.on_trial_complete("t0", {"val/acc": 0.5})
    assert seen == ["t0"]
    # a checkpoint keeps what was handed out, so a resumed sweep does not rerun the references
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored, *_ = make_searcher(
        "tpe", [], {"L": {"int": [1, 16]}}, {}, [0, 1], 3, [("val/acc", "max")], references=references
    )
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.pending == [] and restored.reference_ids == {"r0", "r1"}


def test_reference_trial_runs_at_its_defaults() -> None:
    from sweeper.tracking.runs import SweepRun

    context = SweepContext(
        tracking=SweepRun("sqlite:///x.db", "0", "p", "refs"),
        seeds=[0, 1],
        search_keys=["L"],
        base={
            "method": "lipsum_ft",
            "model": "zoo/tiny-clip-v1",
            "data": {"id": "photo", "ood": ["sketch"]},
            "train": {"epochs": 1},
            "params": {"M": 40, "lam": 2.0},
        },
    )
    config = {POINT: {"method": "ft", "reference": "ft", "seed": 1}}
    trial = trial_config(context, config)
    assert trial.method == "ft" and trial.params == {} and trial.seed == 1 and trial.train.epochs == 1
    assert run_name(trial, point_of(config)) == "ft reference seed=1"
    swept = trial_config(context, {POINT: {"L": 8, "seed": 0}})
    assert swept.params == {"M": 40, "lam": 2.0, "L": 8}
