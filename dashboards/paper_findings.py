"""The findings of RESULTS.md (issue 9; the sixth from issue 21), each from its ``paper-*.yaml`` sweeps.

``FINDINGS`` maps a finding number to its sweeps and the function that judges it; the functions
take ``{sweep name: frame}`` (``sweeper.tracking.results.load``) and return a :class:`findings.Finding`.
Thresholds and the verdict rule are in :mod:`dashboards.findings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from dashboards.compat_finding import contcoop
from dashboards.findings import (
    ID_TOLERANCE,
    Claim,
    Finding,
    Frames,
    bound,
    directional,
    finished,
    forgetting,
    insensitive,
    ood_domains,
    per_seed,
    robustness_line,
    wise_alpha,
    wise_gain,
    zs_tasks,
)


def comparable_id(a: pd.Series, b: pd.Series, names: str, what: str = "ID") -> Claim:
    """The "at comparable ID" condition of a comparison: mean IDs (or another accuracy, ``what``)
    within ``ID_TOLERANCE``."""
    gap = float(a.mean() - b.mean())
    return bound(
        f"at comparable {what}: {names} within {ID_TOLERANCE * 100:.0f} points",
        abs(gap),
        ID_TOLERANCE,
        f"{what} {a.mean():.3f} vs {b.mean():.3f}, gap {gap:+.3f}",
    )


def ft_robustness(frames: Frames) -> Finding:
    """1. FT gains ID, loses OOD robustness; WiSE-FT's curve dominates FT on OOD at equal ID."""
    df = frames["paper-ft-robustness"]
    zs_id, zs_ood = per_seed(df, "id/acc", method="zeroshot"), per_seed(df, "ood/avg_acc", method="zeroshot")
    ft_id, ft_ood = per_seed(df, "id/acc", method="ft"), per_seed(df, "ood/avg_acc", method="ft")
    line = robustness_line(ft_id, zs_id.mean(), zs_ood.mean())
    wise = finished(df)[finished(df)["method"] == "wise_ft"].set_index("seed")
    gains = wise.apply(wise_gain, axis=1)
    return Finding(
        1,
        "FT vs zero-shot and WiSE-FT",
        [
            directional("FT improves ID accuracy over zero-shot", ft_id, zs_id),
            directional(
                "FT falls below zero-shot's effective-robustness line (OOD under the line at FT's ID)",
                line,
                ft_ood,
                "line: through chance (0.1, 0.1) and the zero-shot (ID, OOD) point",
            ),
            directional(
                "WiSE-FT at the alpha chosen on ID validation beats FT (alpha = 1) on OOD",
                gains,
                gains * 0,
                "per seed: alpha "
                + ", ".join(
                    f"{wise_alpha(row)} gains {gain:+.3f}"
                    for (_, row), gain in zip(wise.iterrows(), gains, strict=True)
                ),
            ),
        ],
        ["paper-ft-robustness"],
    )


def lipsum(frames: Frames) -> Finding:
    """2. Lipsum-FT beats FT on OOD at comparable ID; MSE >= KLD; insensitive to L and M."""
    df = frames["paper-lipsum"]
    ft_id, ft_ood = per_seed(df, "id/acc", method="ft"), per_seed(df, "ood/avg_acc", method="ft")
    mse_id = per_seed(df, "id/acc", method="lipsum_ft", loss="mse")
    mse_ood = per_seed(df, "ood/avg_acc", method="lipsum_ft", loss="mse")
    kld_ood = per_seed(df, "ood/avg_acc", method="lipsum_ft", loss="kld")
    return Finding(
        2,
        "Lipsum-FT",
        [
            directional("Lipsum-FT (MSE) beats FT on OOD avg", mse_ood, ft_ood),
            comparable_id(mse_id, ft_id, "Lipsum-FT (MSE) and FT"),
            directional(
                "MSE >= KLD on OOD avg (holds if MSE is better beyond noise; a tie is inconclusive)", mse_ood, kld_ood
            ),
            insensitive("Lipsum-FT's OOD avg is insensitive to L", with_default(frames, "L"), "L", "ood/avg_acc"),
            insensitive("Lipsum-FT's OOD avg is insensitive to M", with_default(frames, "M"), "M", "ood/avg_acc"),
        ],
        ["paper-lipsum", "paper-lipsum-L", "paper-lipsum-M"],
    )


def with_default(frames: Frames, axis: str) -> pd.DataFrame:
    """paper-lipsum-<axis>'s trials plus the default value's: paper-lipsum's Lipsum-FT (MSE) trials,
    trained on the same data, recipe and seeds."""
    default = finished(frames["paper-lipsum"])
    default = default[(default["method"] == "lipsum_ft") & (default["loss"].astype(str) == "mse")]
    return pd.concat([finished(frames[f"paper-lipsum-{axis}"]), default], ignore_index=True)


def dive(frames: Frames) -> Finding:
    """3. DiVE keeps zero-shot retention closer to the pre-trained model than FLYP, at comparable ID."""
    df = frames["paper-dive"]
    tasks = zs_tasks(df)
    flyp_loss, dive_loss = forgetting(df, "flyp", tasks), forgetting(df, "dive", tasks)
    return Finding(
        3,
        "DiVE vs FLYP",
        [
            directional(
                f"DiVE loses less zero-shot retention ({', '.join(tasks)}) than FLYP",
                flyp_loss,
                dive_loss,
                f"mean drop from zero-shot: FLYP {flyp_loss.mean():.4f}, DiVE {dive_loss.mean():.4f}",
            ),
            comparable_id(
                per_seed(df, "id/acc", method="dive"), per_seed(df, "id/acc", method="flyp"), "DiVE and FLYP"
            ),
        ],
        ["paper-dive"],
    )


def lorsu(frames: Frames) -> Finding:
    """4. LoRSU: ID within a few points of FT, <= 10% of the image tower updated, less forgetting."""
    df = frames["paper-lorsu"]
    done = finished(df)
    lorsu_rows = done[done["method"] == "lorsu"]
    # LoRSU's own lr, chosen on ID validation: picking it on test accuracy would be oracle selection
    lr = lorsu_rows.groupby("lr")["val/acc"].mean().idxmax()
    df = df[(df["method"] != "lorsu") | (df["lr"] == lr)]
    ft_id, lorsu_id = per_seed(df, "id/acc", method="ft"), per_seed(df, "id/acc", method="lorsu")
    others = ood_domains(df) + zs_tasks(df)
    ft_loss, lorsu_loss = forgetting(df, "ft", others), forgetting(df, "lorsu", others)
    fraction = float(per_seed(df, "params/visual_fraction", method="lorsu").max())
    gap = float(ft_id.mean() - lorsu_id.mean())
    return Finding(
        4,
        "LoRSU vs FT",
        [
            bound(
                f"LoRSU's ID is within {ID_TOLERANCE * 100:.0f} points of FT's",
                gap,
                ID_TOLERANCE,
                f"FT {ft_id.mean():.3f}, LoRSU (lr {lr:g}, best on val/acc) {lorsu_id.mean():.3f}, gap {gap:+.3f}",
            ),
            bound("LoRSU updates at most 10% of the image tower's parameters", fraction, 0.10),
            directional(
                "LoRSU forgets less than FT on the other domains and tasks",
                ft_loss,
                lorsu_loss,
                f"mean drop from zero-shot over {len(others)} domains/tasks: FT {ft_loss.mean():.4f}, "
                f"LoRSU {lorsu_loss.mean():.4f}",
            ),
        ],
        ["paper-lorsu"],
    )


def lorsu_continual(frames: Frames) -> Finding:
    """6. LoRSU over 5 continual sessions: less forgetting than FT at a comparable target gain."""
    df = finished(frames["paper-lorsu-continual"])
    # LoRSU's lr chosen on ID validation after the last session, as in finding 4
    lr = df[df["method"] == "lorsu"].groupby("lr")["val/acc"].mean().idxmax()
    df = df[(df["method"] != "lorsu") | (df["lr"] == lr)]
    metric = {name: {m: per_seed(df, f"continual/{name}", method=m) for m in ("ft", "lorsu")} for name in _CONTINUAL}
    gain, forget, kept = metric["target_gain"], metric["forgetting"], metric["retention_change"]
    return Finding(
        6,
        "LoRSU vs FT over continual sessions",
        [
            comparable_id(gain["lorsu"], gain["ft"], "LoRSU's and FT's mean gains", what="target gain"),
            directional(
                "LoRSU forgets less of the earlier sessions than FT",
                forget["ft"],
                forget["lorsu"],
                f"continual/forgetting after 5 sessions: FT {forget['ft'].mean():.3f}, "
                f"LoRSU (lr {lr:g}, best on val/acc) {forget['lorsu'].mean():.3f}",
            ),
            directional(
                "LoRSU keeps more of the held-out zero-shot tasks than FT",
                kept["lorsu"],
                kept["ft"],
                f"continual/retention_change: FT {kept['ft'].mean():+.3f}, LoRSU {kept['lorsu'].mean():+.3f}",
            ),
        ],
        ["paper-lorsu-continual"],
    )


_CONTINUAL = ("target_gain", "forgetting", "retention_change")


@dataclass(frozen=True)
class Spec:
    """How one finding is tested: its sweeps, the table of each, and its judge."""

    judge: Callable[[Frames], Finding]
    tables: Mapping[str, tuple[list[str], list[str]]]  # sweep -> (rows, metrics)
    layouts: Mapping[str, str] = field(default_factory=dict)  # sweep -> extra paper layout (wise, compat)


_MAIN = ["id/acc", "ood/avg_acc"]
FINDINGS: dict[int, Spec] = {
    1: Spec(ft_robustness, {"paper-ft-robustness": (["method"], [*_MAIN, "id/ece"])}, {"paper-ft-robustness": "wise"}),
    2: Spec(
        lipsum,
        {
            "paper-lipsum": (["method", "loss"], [*_MAIN, "id/ece"]),
            "paper-lipsum-L": (["L"], _MAIN),
            "paper-lipsum-M": (["M"], _MAIN),
        },
    ),
    3: Spec(dive, {"paper-dive": (["method"], [*_MAIN, "zs/unseen_shapes/acc", "zs/colour/acc"])}),
    4: Spec(
        lorsu,
        {
            "paper-lorsu": (
                ["method", "lr"],
                [*_MAIN, "zs/unseen_shapes/acc", "zs/colour/acc", "params/visual_fraction"],
            )
        },
    ),
    5: Spec(
        contcoop,
        {
            "paper-contcoop": (
                ["method"],
                ["compat/v1/acc", "compat/v2/acc", "compat/hmean", "compat/v1/zs_acc", "compat/v2/zs_acc"],
            )
        },
    ),
    6: Spec(
        lorsu_continual,
        {
            "paper-lorsu-continual": (
                ["method", "lr"],
                [f"continual/{name}" for name in ("target_gain", "forgetting", "avg_acc", "retention_change")],
            )
        },
        {"paper-lorsu-continual": "sessions"},
    ),
}


def claim_row(claim: Claim) -> str:
    """A markdown table row: claim, effect, seed std, effect / std, verdict, detail."""
    ratio = "n/a" if claim.seed_std == 0 else f"{claim.ratio:+.1f}"
    return (
        f"| {claim.text} | {claim.effect:+.4f} | {claim.seed_std:.4f} | {ratio} | "
        f"**{claim.verdict}** | {claim.detail} |"
    )
