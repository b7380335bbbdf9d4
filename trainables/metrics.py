"""Evaluation metrics with the names used everywhere (Ray results, MLflow, tables).

``id/acc``, ``id/ece`` (15 equal-width bins, top-1, L1), ``id/nll``, ``ood/<domain>/{acc,ece,nll}``,
``ood/avg_acc`` and ``ood/avg_ece``. ECE comes from torchmetrics, so its binning matches the
common reference implementation; NLL is the mean negative log-likelihood of the true class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ECE_BINS = 15


def restrict(logits: torch.Tensor, class_subset: torch.Tensor | None) -> torch.Tensor:
    """Mask logits outside ``class_subset`` (ImageNet-R/-A score only their 200 classes)."""
    if class_subset is None:
        return logits
    masked = torch.full_like(logits, float("-inf"))
    masked[:, class_subset] = logits[:, class_subset]
    return masked


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy, ECE and NLL of one evaluation set."""
    # Imported on first use: torchmetrics takes about 2 s to import, which `sweeper validate` and
    # `sweeper methods` (they import this module through the methods) would pay for nothing.
    from torchmetrics.functional.classification import multiclass_calibration_error

    logits = logits.float()
    probabilities = logits.softmax(dim=1)
    return {
        "acc": (logits.argmax(dim=1) == labels).float().mean().item(),
        "ece": multiclass_calibration_error(
            probabilities, labels, num_classes=logits.shape[1], n_bins=ECE_BINS, norm="l1"
        ).item(),
        "nll": F.cross_entropy(logits, labels).item(),
    }


def summarise(
    per_domain: dict[str, dict[str, float]], id_domain: str, prefixes: tuple[str, str] = ("id", "ood")
) -> dict[str, float]:
    """Flatten per-domain metrics into the standard names, with OOD averages: ``id/*`` and
    ``ood/<domain>/*`` for test splits, ``prefixes=("val", "oodval")`` for validation splits."""
    id_name, ood_name = prefixes
    out = {f"{id_name}/{k}": v for k, v in per_domain[id_domain].items()}
    ood = {d: m for d, m in per_domain.items() if d != id_domain}
    for domain, metrics in ood.items():
        out.update({f"{ood_name}/{domain}/{k}": v for k, v in metrics.items()})
    if ood:
        out[f"{ood_name}/avg_acc"] = sum(m["acc"] for m in ood.values()) / len(ood)
        out[f"{ood_name}/avg_ece"] = sum(m["ece"] for m in ood.values()) / len(ood)
    return out
