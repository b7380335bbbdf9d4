"""Reference rows end to end: `reference: [zeroshot, ft]` runs each reference once per seed beside
the ablation, tags it in MLflow, and `sweeper report` shows labelled rows with deltas on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.tracking import results

pytestmark = pytest.mark.slow

TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["clipart"],
}


def write_sweep(folder: Path, name: str, **overrides) -> Path:
    sweep = {
        "name": name,
        "method": "lipsum_ft",
        "data": TINY_DATA,
        "train": {"epochs": 1, "batch_size": 40, "lr": 1e-4},
        "fixed": {"M": 8, "lam": 2.0},
        "search": {"L": {"grid": [2, 4]}},
        "seeds": [0, 1],
        "resources": {"cpu": 1},
        "reference": ["zeroshot", "ft"],
        "report": {"metrics": ["id/acc", "ood/avg_acc"], "delta": {"reference": "ft"}},
        **overrides,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_reference_trials_run_beside_the_grid_and_head_the_table(local_ray, workdir, capsys) -> None:
    path = write_sweep(workdir, "refs-e2e")
    assert main(["validate", str(path)]) == 0
    assert "references zeroshot, ft" in capsys.readouterr().out
    assert main(["launch", str(path)]) == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    frame = results.load("refs-e2e")
    assert len(frame) == 8 and set(frame["status"]) == {"FINISHED"}
    refs = frame[frame["reference"].notna()]
    assert sorted(zip(refs["method"], refs["seed"], strict=True)) == [
        ("ft", 0),
        ("ft", 1),
        ("zeroshot", 0),
        ("zeroshot", 1),
    ]
    assert refs["L"].isna().all()  # a reference has no searched value
    for run_id in refs["run_id"]:
        run = client.get_run(run_id)
        assert run.data.tags["sweeper.reference"] == run.data.params["method"]
        assert "lam" not in run.data.params  # at its own defaults, not the swept method's fixed values
        assert run.info.run_name.endswith(f"reference seed={run.data.params['seed']}")
    # ft trained with the file's train settings
    ft = refs[refs["method"] == "ft"]
    assert (ft["lr"] == 1e-4).all() and (ft["epochs"] == 1).all()

    capsys.readouterr()
    assert main(["report", "refs-e2e", "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[1].startswith("zeroshot (reference)") and csv[2].startswith("ft (reference)")
    assert [line.split(",")[0] for line in csv[3:5]] == ["2", "4"]
    header = csv[0].split(",")
    delta = header.index("ood/avg_acc delta")
    ft_mean = ft["ood/avg_acc"].mean()
    swept = frame[frame["reference"].isna()]
    for line in csv[3:5]:
        cells = line.split(",")
        own = swept[swept["L"] == int(cells[0])]["ood/avg_acc"].mean()
        assert float(cells[delta]) == pytest.approx(own - ft_mean, abs=1e-9)
    assert csv[2].split(",")[delta] == ""  # the reference row has no delta from itself

    # the best shown by `sweeper status` is the sweep's own, never a reference
    capsys.readouterr()
    assert main(["status", "refs-e2e"]) == 0
    best = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("best "))
    assert "lipsum_ft" in best
