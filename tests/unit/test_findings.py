"""The verdict rules of RESULTS.md (dashboards.findings), on frames with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboards import findings as f
from dashboards.paper_findings import FINDINGS, claim_row


def seeds(*values: float) -> pd.Series:
    return pd.Series(values, index=range(len(values)))


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ((0.60, 0.61, 0.62), (0.50, 0.51, 0.52), f.HOLDS),  # +0.10 against a std of 0.01
        ((0.50, 0.51, 0.52), (0.60, 0.61, 0.62), f.FAILS),  # the opposite, beyond noise
        ((0.50, 0.55, 0.60), (0.49, 0.54, 0.61), f.UNSURE),  # +0.003 against a std of 0.05
    ],
)
def test_directional_claims_compare_the_effect_with_twice_the_seed_std(a, b, verdict) -> None:
    claim = f.directional("a > b", seeds(*a), seeds(*b))
    assert claim.verdict == verdict
    assert claim.seed_std == pytest.approx(0.01 if verdict != f.UNSURE else f.pooled_std(0.05, seeds(*b).std()))


def test_insensitivity_holds_within_noise_and_fails_beyond_it() -> None:
    flat = pd.DataFrame({"L": [2, 2, 8, 8], "ood/avg_acc": [0.50, 0.52, 0.51, 0.53]})
    steep = pd.DataFrame({"L": [2, 2, 8, 8], "ood/avg_acc": [0.40, 0.41, 0.51, 0.52]})
    assert f.insensitive("flat", flat, "L", "ood/avg_acc").verdict == f.HOLDS
    claim = f.insensitive("steep", steep, "L", "ood/avg_acc")
    assert claim.verdict == f.FAILS and "spread 0.110" in claim.detail


def test_a_finding_fails_on_any_failed_claim_and_holds_only_when_all_hold() -> None:
    yes, no = f.bound("x", 0.05, 0.1), f.bound("y", 0.2, 0.1)
    maybe = f.directional("z", seeds(0.5, 0.6), seeds(0.5, 0.6))
    assert f.Finding(1, "t", [yes, yes], []).verdict == f.HOLDS
    assert f.Finding(1, "t", [yes, maybe], []).verdict == f.UNSURE
    assert f.Finding(1, "t", [maybe, no], []).verdict == f.FAILS


def test_robustness_line_passes_through_chance_and_the_zero_shot_point() -> None:
    assert f.robustness_line(0.1, 0.5, 0.6) == pytest.approx(0.1)
    assert f.robustness_line(0.5, 0.5, 0.6) == pytest.approx(0.6)
    assert f.robustness_line(0.9, 0.5, 0.6) == pytest.approx(1.1)  # slope 1.25


def test_wise_alpha_is_chosen_on_id_validation_not_on_ood() -> None:
    row = pd.Series(
        {
            "wise/0.0/val/acc": 0.50,
            "wise/0.0/ood/avg_acc": 0.70,
            "wise/0.5/val/acc": 0.62,
            "wise/0.5/ood/avg_acc": 0.60,
            "wise/1.0/val/acc": 0.60,
            "wise/1.0/ood/avg_acc": 0.45,
        }
    )
    assert f.wise_alpha(row) == "0.5"  # alpha 0 has the best OOD, but the worst validation
    assert f.wise_gain(row) == pytest.approx(0.15)
    row["wise/0.5/val/acc"] = 0.55
    assert f.wise_alpha(row) == "1.0"
    assert f.wise_gain(row) == pytest.approx(0.0)  # FT itself is best on validation: no gain
    row["wise/0.5/val/acc"] = 0.60
    assert f.wise_alpha(row) == "1.0"  # a tie goes to the larger alpha


def test_forgetting_is_the_mean_drop_from_the_zeroshot_trials() -> None:
    frame = pd.DataFrame(
        {
            "method": ["zeroshot", "zeroshot", "ft", "ft"],
            "seed": [0, 1, 0, 1],
            "status": "FINISHED",
            "zs/a/acc": [0.9, 0.9, 0.7, 0.8],
            "zs/b/acc": [0.5, 0.5, 0.5, 0.3],
        }
    )
    assert list(f.forgetting(frame, "ft", ["zs/a/acc", "zs/b/acc"])) == pytest.approx([0.1, 0.15])


def test_failed_trials_are_not_results() -> None:
    frame = pd.DataFrame(
        {"method": ["ft", "ft"], "seed": [0, 1], "status": ["FINISHED", "FAILED"], "id/acc": [0.6, 0.1]}
    )
    assert list(f.per_seed(frame, "id/acc", method="ft")) == [0.6]
    with pytest.raises(ValueError, match="no finished trial"):
        f.per_seed(frame, "id/acc", method="lorsu")


def test_lorsu_finding_reads_its_frame_end_to_end() -> None:
    rows = []
    for seed in range(3):
        rows += [
            {
                "method": "zeroshot",
                "lr": 3e-4,
                "id/acc": 0.52,
                "ood/x/acc": 0.6,
                "zs/t/acc": 0.9,
                "params/visual_fraction": 0.0,
            },
            {
                "method": "ft",
                "lr": 3e-4,
                "id/acc": 0.70 + seed / 100,
                "ood/x/acc": 0.4,
                "zs/t/acc": 0.7,
                "params/visual_fraction": 1.0,
            },
            {
                "method": "lorsu",
                "lr": 1e-3,
                "id/acc": 0.68 + seed / 100,
                "val/acc": 0.66,
                "ood/x/acc": 0.55,
                "zs/t/acc": 0.88,
                "params/visual_fraction": 0.04,
            },
            {
                "method": "lorsu",
                "lr": 3e-3,
                "id/acc": 0.71,
                "val/acc": 0.60,
                "ood/x/acc": 0.2,
                "zs/t/acc": 0.5,
                "params/visual_fraction": 0.04,
            },
        ]
        for row in rows[-4:]:
            row.update(seed=seed, status="FINISHED")
    # LoRSU at lr 1e-3, its better val/acc (3e-3 is better on test ID, which must not choose); 3e-3 is left out
    finding = FINDINGS[4].judge({"paper-lorsu": pd.DataFrame(rows)})
    assert [c.verdict for c in finding.claims] == [f.HOLDS, f.HOLDS, f.HOLDS]
    assert finding.claims[2].effect == pytest.approx(((0.2 + 0.2) - (0.05 + 0.02)) / 2)
    assert claim_row(finding.claims[1]).startswith("| LoRSU updates at most 10%")


def test_lipsum_insensitivity_reads_the_default_value_from_the_main_sweep() -> None:
    from dashboards.paper_findings import with_default

    main = pd.DataFrame(
        {
            "method": ["ft", "lipsum_ft", "lipsum_ft"],
            "loss": [None, "mse", "kld"],
            "L": [None, 8, 8],
            "seed": [0, 0, 0],
            "status": "FINISHED",
            "ood/avg_acc": [0.4, 0.5, 0.45],
        }
    )
    axis = pd.DataFrame({"L": [2, 24], "seed": [0, 0], "status": "FINISHED", "ood/avg_acc": [0.49, 0.51]})
    pooled = with_default({"paper-lipsum": main, "paper-lipsum-L": axis}, "L")
    assert sorted(zip(pooled["L"], pooled["ood/avg_acc"], strict=True)) == [(2, 0.49), (8, 0.5), (24, 0.51)]


def test_lorsu_continual_reads_lorsus_lr_from_validation_and_compares_forgetting() -> None:
    rows = []
    for seed in range(3):
        rows += [
            {
                "method": "ft",
                "lr": 3e-4,
                "val/acc": 0.3,
                "continual/target_gain": 0.40 + seed / 100,
                "continual/forgetting": 0.30,
                "continual/retention_change": -0.10,
            },
            {
                "method": "lorsu",
                "lr": 1e-3,
                "val/acc": 0.5,
                "continual/target_gain": 0.38 + seed / 100,
                "continual/forgetting": 0.10 + seed / 100,
                "continual/retention_change": -0.01,
            },
            # Better on test gain and forgetting, worse on validation: must not be the one judged.
            {
                "method": "lorsu",
                "lr": 3e-3,
                "val/acc": 0.4,
                "continual/target_gain": 0.60,
                "continual/forgetting": 0.0,
                "continual/retention_change": 0.0,
            },
        ]
        for row in rows[-3:]:
            row.update(seed=seed, status="FINISHED")
    finding = FINDINGS[6].judge({"paper-lorsu-continual": pd.DataFrame(rows)})
    assert [c.verdict for c in finding.claims] == [f.HOLDS, f.HOLDS, f.HOLDS]
    assert finding.claims[0].text.startswith("at comparable target gain")
    assert finding.claims[1].effect == pytest.approx(0.30 - 0.11)
    assert "lr 0.001" in finding.claims[1].detail


def contcoop_frame(losses: dict[str, float]) -> pd.DataFrame:
    """paper-contcoop's five methods over three seeds, each losing ``losses[method]`` on the upgrade
    (beyond its zero-shot head's drop), with a seed noise of +-0.005."""
    heads = {"coop": (0.524, 0.488), "tip_adapter_f": (0.524, 0.488)}  # the ensemble; the others one template
    rows = []
    for method, loss in losses.items():
        v1_zs, v2_zs = heads.get(method, (0.518, 0.498))
        for seed, noise in enumerate((-0.005, 0.0, 0.005)):
            v1 = v1_zs + 0.01
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "status": "FINISHED",
                    "compat/v1/acc": v1,
                    "compat/v2/acc": v1 - (v1_zs - v2_zs) - loss - noise,
                    "compat/v1/zs_acc": v1_zs,
                    "compat/v2/zs_acc": v2_zs,
                }
            )
    return pd.DataFrame(rows)


def test_contcoop_finding_compares_the_loss_beyond_zero_shot_against_the_weakest_rival() -> None:
    from dashboards.compat_finding import upgrade_loss

    losses = {"coop": 0.08, "kgcoop": 0.10, "contcoop": 0.03, "clip_adapter": 0.15, "tip_adapter_f": 0.20}
    frame = contcoop_frame(losses)
    # CoOp's raw drop is its loss plus the ensemble head's zero-shot drop (0.036); that drop is not counted
    assert upgrade_loss(frame, "coop").tolist() == pytest.approx([0.075, 0.08, 0.085])
    finding = FINDINGS[5].judge({"paper-contcoop": frame})
    assert [c.verdict for c in finding.claims] == [f.HOLDS, f.HOLDS, f.HOLDS] and finding.verdict == f.HOLDS
    deep, tip, least = finding.claims
    assert deep.text.startswith("CLIP-Adapter loses more") and "vs KgCoOp" in deep.detail
    assert deep.effect == pytest.approx(0.15 - 0.10) and tip.effect == pytest.approx(0.20 - 0.10)
    assert least.effect == pytest.approx(0.08 - 0.03) and "vs CoOp" in least.detail
    assert any("CLIP-Adapter 0.150" in note for note in finding.notes)

    # an adapter that loses less than one prompt fails its claim; a tie with ContCoOp is inconclusive
    finding = FINDINGS[5].judge({"paper-contcoop": contcoop_frame({**losses, "clip_adapter": 0.03})})
    assert [c.verdict for c in finding.claims] == [f.FAILS, f.HOLDS, f.UNSURE] and finding.verdict == f.FAILS
    assert "vs KgCoOp" in finding.claims[0].detail and "vs CLIP-Adapter" in finding.claims[2].detail


def test_one_finding_is_regenerated_alone_and_the_others_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import results_file

    def missing(name: str, uri: str) -> pd.DataFrame:
        raise KeyError(name)

    monkeypatch.setattr(results_file, "load", missing)
    old = results_file.build("sqlite:///x.db", "## What was checked\n\nold notes\n")
    assert "## Finding 5: not run" in old and "| 5. (not run) | not run |" in old
    frame = contcoop_frame({"coop": 0.08, "kgcoop": 0.10, "contcoop": 0.03, "clip_adapter": 0.15, "tip_adapter_f": 0.2})
    frame.attrs["sweep"] = "paper-contcoop"

    def only_contcoop(name: str, uri: str) -> pd.DataFrame:
        if name != "paper-contcoop":
            raise AssertionError(f"{name} was read: only finding 5 is regenerated")
        return frame

    monkeypatch.setattr(results_file, "load", only_contcoop)
    new = results_file.refresh(old, [5], "sqlite:///x.db", "## What was checked\n\nnew notes\n")
    assert "| 5. ContCoOp compatibility | holds |" in new and "## Finding 5: ContCoOp compatibility — **holds**" in new
    assert "regenerated on" in new and "--findings 5" in new and "| tip_adapter_f " in new
    assert new.endswith("new notes\n") and "old notes" not in new
    # the other findings' rows and sections, before and after finding 5's, are the old file's to the byte
    before = old.split("## Finding 5")[0].replace("| 5. (not run) | not run |", "| 5. ContCoOp compatibility | holds |")
    assert new.split("## Finding 5")[0] == before
    after = old.split("## Finding 6")[1].split("## What was checked")[0]
    assert new.split("## Finding 6")[1].split("## What was checked")[0] == after and "## Finding 6: not run" in new
    with pytest.raises(ValueError, match="regenerate it whole"):
        results_file.refresh("# Results\n", [5], "sqlite:///x.db")
