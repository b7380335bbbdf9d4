"""Finding 5 of RESULTS.md (issue 9, with the adapters of issue 21's helper): a module carried
unchanged from the text encoder v1 to v2 (ContCoOp's compatibility setting), judged on the
``paper-contcoop`` sweep. :mod:`dashboards.paper_findings` lists it with the others.
"""

from __future__ import annotations

import pandas as pd

from dashboards.findings import Claim, Finding, Frames, directional, per_seed

PROMPTS = {"coop": "CoOp", "kgcoop": "KgCoOp", "contcoop": "ContCoOp"}
DEEP = {"clip_adapter": "CLIP-Adapter", "tip_adapter_f": "Tip-Adapter-F"}
UPGRADE_LOSS = (
    "loss on the upgrade, per seed: (compat/v1/acc - compat/v2/acc) - (compat/v1/zs_acc - compat/v2/zs_acc), "
    "the drop from v1 to v2 beyond the zero-shot drop with the same text head; a claim made against several "
    "methods rests on its weakest comparison (the lowest effect / std)"
)


def upgrade_loss(frame: pd.DataFrame, method: str) -> pd.Series:
    """Per seed: the accuracy a module loses when it is carried, unchanged, from v1 to v2, beyond
    what the zero-shot classifier with the same text head loses:
    ``(compat/v1/acc - compat/v2/acc) - (compat/v1/zs_acc - compat/v2/zs_acc)``.
    The zero-shot drop depends on the head's templates (one template or the ensemble), so the raw
    drop would compare the heads as well as the modules."""
    drop = per_seed(frame, "compat/v1/acc", method=method) - per_seed(frame, "compat/v2/acc", method=method)
    zs_drop = per_seed(frame, "compat/v1/zs_acc", method=method) - per_seed(frame, "compat/v2/zs_acc", method=method)
    return drop - zs_drop


def weakest(text: str, pairs: dict[str, tuple[pd.Series, pd.Series]]) -> Claim:
    """A claim against several methods, ``a > b`` for every (a, b) of ``pairs`` (keyed by the other
    method's name): the comparison least in its favour (lowest effect / std), which has the weakest
    verdict of them, named in the detail with both means."""
    other, (a, b) = min(pairs.items(), key=lambda item: directional(text, *item[1]).ratio)
    claim = directional(text, a, b)
    return Claim(
        text, claim.effect, claim.seed_std, claim.verdict, f"weakest: vs {other} ({a.mean():.3f} vs {b.mean():.3f})"
    )


def contcoop(frames: Frames) -> Finding:
    """5. Carried unchanged from v1 to v2, the deep image-side adapters (CLIP-Adapter, Tip-Adapter-F)
    lose more accuracy than the prompts (CoOp, KgCoOp, ContCoOp), and ContCoOp loses the least."""
    df = frames["paper-contcoop"]
    names = {**PROMPTS, **DEEP}
    loss = {m: upgrade_loss(df, m) for m in names}
    gains = {
        m: float((per_seed(df, "compat/v1/acc", method=m) - per_seed(df, "compat/v1/zs_acc", method=m)).mean())
        for m in names
    }
    claims = [
        weakest(
            f"{name} loses more on the upgrade than each prompt method",
            {PROMPTS[p]: (loss[deep], loss[p]) for p in PROMPTS},
        )
        for deep, name in DEEP.items()
    ]
    claims.append(
        weakest(
            "ContCoOp loses the least on the upgrade of the five",
            {names[m]: (loss[m], loss["contcoop"]) for m in names if m != "contcoop"},
        )
    )
    moved = ", ".join(f"{names[m]} {g:+.3f}" for m, g in gains.items())
    means = ", ".join(f"{names[m]} {loss[m].mean():.3f}" for m in names)
    return Finding(
        5,
        "ContCoOp compatibility",
        claims,
        ["paper-contcoop"],
        [
            UPGRADE_LOSS,
            f"mean loss on the upgrade: {means}",
            f"gain over zero-shot on v1, compat/v1/acc - compat/v1/zs_acc (a module that does not move loses "
            f"nothing): {moved}",
        ],
    )
