"""A multi-objective sweep end to end: ``objective: [val/acc max, val/nll min]`` with ``searcher:
nsga2`` through the real launch path, then the front that ``sweeper.tables.pareto`` computes from
the results, and the one ``sweeper report --layout pareto`` prints, equal Optuna's own
``study.best_trials``: on the same (params, values), and in the study the search itself kept in the
sweep's database (``mlflow.optuna.db``). The sweep's last lines and ``sweeper status`` show that front."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.run.scoring import UNSCORED_TAG
from sweeper.tables.pareto import pareto
from sweeper.tracking import results

pytestmark = pytest.mark.slow

OBJECTIVES = [{"metric": "val/acc", "mode": "max"}, {"metric": "val/nll", "mode": "min"}]
SEARCH = {"L": {"int": [1, 8]}, "lam": {"float": [0.5, 4.0]}}
SWEEP = {
    "name": "mo-e2e",
    "method": "lipsum_ft",
    "model": "zoo/tiny-clip-v1",
    "data": {
        "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
        "id": "photo",
        "ood": ["sketch"],
    },
    "train": {"epochs": 1, "batch_size": 40, "lr": 1e-4},
    "fixed": {"M": 8},
    "search": SEARCH,
    "seeds": [0],
    "searcher": "nsga2",
    "num_samples": 6,
    "search_seed": 1,
    "objective": OBJECTIVES,
    "resources": {"cpu": 1},
    "report": {"rows": ["L", "lam"], "metrics": ["val/acc", "val/nll"]},
}


def optuna_front(frame) -> set[str]:
    """Optuna's own front (``study.best_trials``) on the trials' (params, values): run ids."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    distributions = {
        "L": optuna.distributions.IntDistribution(*SEARCH["L"]["int"]),
        "lam": optuna.distributions.FloatDistribution(*SEARCH["lam"]["float"]),
    }
    for row in frame.to_dict("records"):
        study.add_trial(
            optuna.trial.create_trial(
                params={"L": int(row["L"]), "lam": float(row["lam"])},
                distributions=distributions,
                values=[row["val/acc"], row["val/nll"]],
                user_attrs={"run_id": row["run_id"]},
            )
        )
    return {t.user_attrs["run_id"] for t in study.best_trials}


def test_an_nsga2_sweep_of_two_objectives_finds_optunas_front(local_ray, workdir: Path, capsys) -> None:
    path = workdir / "mo-e2e.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    assert main(["launch", str(path)]) == 0
    launched = capsys.readouterr().out

    frame = results.load("mo-e2e")
    assert len(frame) == 6 and set(frame["status"]) == {"FINISHED"}
    assert frame["val/acc"].notna().all() and frame["val/nll"].notna().all()
    front = pareto(frame, ["val/acc", "val/nll"], ["max", "min"])
    assert set(front["run_id"]) == optuna_front(frame) and len(front) >= 1

    parent = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}").get_run(frame.attrs["parent_run_id"])
    assert json.loads(parent.data.tags["sweeper.objectives"])[1]["metric"] == "val/nll"
    assert parent.data.tags[UNSCORED_TAG] == "0" and parent.data.tags["sweeper.searcher"] == "nsga2"
    assert f"front: {len(front)} of 6 scored trials" in launched  # the live view's last word

    assert main(["status", "mo-e2e"]) == 0
    assert f"front: {len(front)} of 6 scored trials" in capsys.readouterr().out
    assert main(["status", "mo-e2e", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["front"]["size"] == len(front) and summary["unscored_trials"] == 0
    assert summary["front"]["best"]["val/nll"]["value"] == pytest.approx(frame["val/nll"].min())

    # The report's front: its layout prints it, and results.frontier is the function behind it.
    assert main(["report", "mo-e2e", "--layout", "pareto", "--out", str(workdir / "report")]) == 0
    printed = capsys.readouterr().out
    assert f"front of val/acc (max) x val/nll (min): {len(front)} of 6 candidates" in printed
    reported = results.frontier(frame, ["val/acc", "val/nll"], ["max", "min"], labels=["L", "lam"]).front
    reported_points = {(int(row["L"]), round(float(row["lam"]), 9)) for row in reported.to_dict("records")}
    assert reported_points == {(int(r["L"]), round(float(r["lam"]), 9)) for r in front.to_dict("records")}

    # The study the search kept in the sweep's own database has the same front.
    study = optuna.load_study(
        study_name=parent.data.tags["sweeper.optuna_study"], storage=f"sqlite:///{workdir / 'mlflow.optuna.db'}"
    )
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 6
    assert {(int(t.params["L"]), round(float(t.params["lam"]), 9)) for t in study.best_trials} == reported_points
