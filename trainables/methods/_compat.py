"""The ``compat/*`` metrics of a module trained on one model and carried, unchanged, to its upgrade."""

from __future__ import annotations


def compat_metrics(
    v1: dict[str, float], v2: dict[str, float], v1_zs: dict[str, float], v2_zs: dict[str, float]
) -> dict[str, float]:
    """``compat/v1/acc``, ``compat/v2/acc``, their harmonic mean ``compat/hmean`` and the zero-shot
    references ``compat/v{1,2}/zs_acc`` from the four evaluations (ID accuracy), plus the upgraded
    model's OOD average and its zero-shot reference when the trial has OOD domains."""
    a, b = v1["id/acc"], v2["id/acc"]
    out = {
        "compat/v1/acc": a,
        "compat/v2/acc": b,
        "compat/hmean": 2 * a * b / (a + b) if a + b else 0.0,
        "compat/v1/zs_acc": v1_zs["id/acc"],
        "compat/v2/zs_acc": v2_zs["id/acc"],
    }
    if "ood/avg_acc" in v2:
        out.update({"compat/v2/ood_avg_acc": v2["ood/avg_acc"], "compat/v2/zs_ood_avg_acc": v2_zs["ood/avg_acc"]})
    return out
