"""Validation selection end to end: a sweep selected on val/acc reports its best epoch's test
metrics, and ``sweeper confirm`` reruns its top configurations on fresh seeds."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from test_sweeps import runs_of, write_sweep

from sweeper.cli import main
from sweeper.tracking import results

pytestmark = pytest.mark.slow


def test_a_val_selected_sweep_reports_the_best_epoch_and_confirm_reruns_its_top_two(local_ray, workdir, capsys) -> None:
    path = write_sweep(
        workdir,
        "select",
        method="ft",
        fixed={},
        search={"lr": {"grid": [1e-5, 3e-3, 1e-2]}},
        seeds=[0],
        train={"epochs": 3, "batch_size": 40},
        objective={"metric": "val/acc", "mode": "max"},
    )
    assert main(["launch", str(path)]) == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    _, children = runs_of(workdir, "select")
    assert len(children) == 3
    for child in children:
        run_id = child.info.run_id
        assert child.data.tags["sweeper.summary_step"] == "3"
        epochs = {
            name: {m.step: m.value for m in client.get_metric_history(run_id, name)}
            for name in ("val/acc", "id/acc", "ood/avg_acc")
        }
        best = int(child.data.metrics["best_epoch"])
        per_epoch = {step: value for step, value in epochs["val/acc"].items() if step < 3}
        assert per_epoch[best] == max(per_epoch.values())
        # The run table's value (the latest) is the selected epoch's; last/ keeps the last epoch.
        for name in ("id/acc", "ood/avg_acc"):
            assert child.data.metrics[name] == pytest.approx(epochs[name][best])
            assert child.data.metrics[f"last/{name}"] == pytest.approx(epochs[name][2])
    curves = results.history("select", metrics=["id/acc"])
    assert sorted(curves["step"].unique()) == [0, 1, 2]  # the summary step is not a point of a curve

    capsys.readouterr()
    assert main(["confirm", "select", "--top", "2", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "seeds [1, 2]" in out and "95% CI" in out
    ranked = results.load("select").groupby("lr")["val/acc"].mean().sort_values(ascending=False)
    parents, confirmed = runs_of(workdir, "select-confirm")
    assert (
        len(parents) == 1 and parents[0].data.tags["mlflow.parentRunId"] == runs_of(workdir, "select")[0][0].info.run_id
    )
    assert len(confirmed) == 4 and {c.info.status for c in confirmed} == {"FINISHED"}
    assert sorted({float(c.data.params["lr"]) for c in confirmed}) == sorted(ranked.index[:2])
    assert sorted(int(c.data.params["seed"]) for c in confirmed) == [1, 1, 2, 2]
    # The search sweep's own trials are untouched by the nested confirm sweep.
    assert len(results.load("select")) == 3
