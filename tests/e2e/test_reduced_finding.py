"""A reduced finding (issue 9) end to end: the real paper sweep file, tiny data, judged into RESULTS.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dashboards import results_file
from dashboards.paper_findings import FINDINGS
from sweeper.cli import main
from sweeper.tracking import results

pytestmark = pytest.mark.slow
SPACES = Path(__file__).resolve().parents[2] / "search_spaces"


def reduced(name: str, folder: Path) -> Path:
    """The shipped sweep file with the world and the training shrunk, everything else as shipped."""
    sweep = yaml.safe_load((SPACES / f"{name}.yaml").read_text())
    sweep["data"]["source"] = {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}}
    sweep["train"].update(epochs=1, batch_size=32)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_every_finding_names_sweep_files_that_exist_and_validate(capsys) -> None:
    for name in results_file.sweeps_needed():
        assert main(["validate", str(SPACES / f"{name}.yaml")]) == 0, capsys.readouterr().err


def test_finding_one_reduced_is_judged_from_mlflow_into_results_md(local_ray, workdir) -> None:
    assert main(["launch", str(reduced("paper-ft-robustness", workdir))]) == 0
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    frame = results.load("paper-ft-robustness", uri)
    assert sorted(frame["method"].value_counts().items()) == [("ft", 3), ("wise_ft", 3), ("zeroshot", 3)]

    finding = FINDINGS[1].judge({"paper-ft-robustness": frame})
    ft_gain = frame[frame.method == "ft"]["id/acc"].mean() - frame[frame.method == "zeroshot"]["id/acc"].mean()
    assert finding.claims[0].effect == pytest.approx(ft_gain)  # the verdict rests on MLflow's numbers
    assert finding.verdict in ("holds", "does not hold", "inconclusive")

    out = workdir / "RESULTS.md"
    assert results_file.main(["--out", str(out), "--tracking-uri", uri, "--notes", str(workdir / "none")]) == 0
    text = out.read_text()
    assert f"## Finding 1: FT vs zero-shot and WiSE-FT — **{finding.verdict}**" in text
    assert "| wise_ft " in text and "| zeroshot " in text  # the sweep's table, one row per method
    for number in (2, 3, 4, 5):  # not launched here: listed with the command that runs them
        assert f"## Finding {number}: not run" in text
    assert "sweeper launch search_spaces/paper-contcoop.yaml" in text
