"""The sweep's data as the pareto report needs it: its chance level, and the zero-shot ``(ID, OOD)``
point of every shipped zoo model on it (the family ``--line zoo`` fits its line over).

The data spec comes from the sweep file on the parent run (``sweeper.tracking.launch_reads``).
The zoo models are evaluated by the trials' own path, ``trainables.loop.run`` with the
``zeroshot`` method, so a zoo point and a trial's ``zeroshot/*`` are measured alike; torch is
imported only when the zoo is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trainables.errors import InputError

ZooPoint = tuple[str, float, float]  # (model, ID accuracy, OOD accuracy)


def data_spec(sweep_file: Mapping[str, Any] | None, where: str = "--line") -> dict[str, Any]:
    """The ``data:`` section of the sweep file; InputError naming ``where`` when it is not there."""
    data = (sweep_file or {}).get("data")
    if not isinstance(data, Mapping) or "id" not in data:
        raise InputError(where, "the sweep file is not on the parent run (an older launch?): no data spec to use")
    return dict(data)


def chance_of(data: Mapping[str, Any]) -> float | None:
    """``1 / K`` for the ``K`` classes of the sweep's data source; None when it cannot be opened."""
    from trainables.data.sources import open_source

    try:
        classes = len(open_source(data.get("source", "shapes")).classnames)
    except (InputError, OSError):  # a dataset folder that is not on this machine
        return None
    return 1.0 / classes if classes else None


def evaluate_zero_shot(model: str, data: Mapping[str, Any], device: str = "auto") -> tuple[float, float]:
    """``(id/acc, ood/avg_acc)`` of ``model`` zero-shot on ``data``, through ``trainables.loop.run``."""
    from trainables.loop import run  # torch: only here

    # The retention tasks are not part of the line; skipping them saves their evaluation.
    summary = run({"method": "zeroshot", "model": model, "data": {**data, "retention": False}, "device": device})
    return float(summary["id/acc"]), float(summary["ood/avg_acc"])


def zoo_points(
    data: Mapping[str, Any],
    device: str = "auto",
    evaluate: Callable[[str, Mapping[str, Any], str], tuple[float, float]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ZooPoint]:
    """The zero-shot point of every shipped zoo model (``trainables.models.zoo.names``) on ``data``
    (``evaluate``: by default :func:`evaluate_zero_shot`)."""
    from trainables.models import zoo

    evaluate = evaluate or evaluate_zero_shot

    points = []
    for name in zoo.names():
        if progress is not None:
            progress(f"evaluating zoo/{name} zero-shot on {data.get('id')} and {', '.join(data.get('ood') or [])}")
        id_acc, ood_acc = evaluate(f"zoo/{name}", data, device)
        points.append((name, id_acc, ood_acc))
    return points
