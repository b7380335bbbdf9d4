"""The data of each continual session: what it trains on and what it is tested on.

``sessions: [{id: photo}, {id: sketch}, ...]`` gives one session per domain: its train split, and its
test split for the session's target accuracy. ``sessions: {split: photo, count: 5}`` cuts one domain:

- ``by: class`` (class-incremental, LoRSU's CL-5/10/20 protocol): the classes, in a fixed
  permutation drawn from ``order_seed``, split into ``count`` contiguous groups of near-equal size as
  ``np.array_split`` splits them; session k trains on the images of its classes and is tested on the
  test images of its classes.
- ``by: shot`` (data-incremental): each class's training images, in a fixed random order, dealt into
  ``count`` disjoint shards; every session is tested on the whole test split.

``shots`` keeps the first ``shots`` training images per class of each session (LoRSU's few-shot
sessions: 5, 10 or 20). Evaluation is over every class of the source (class-incremental, not
task-incremental: a session's test images may be mistaken for any class).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.config import SessionDomain, Sessions, SessionSplit
from trainables.data.base import DataSource, DomainSplit, digest
from trainables.errors import InputError


@dataclass(frozen=True)
class Session:
    """One session: its label in reports, its training data and its test data."""

    name: str
    train: DomainSplit
    test: DomainSplit


def subset(split: DomainSplit, keep: torch.Tensor, tag: str) -> DomainSplit:
    """The rows ``keep`` (indices, in order) of ``split``, with a fingerprint of its own (feature
    caches key on it)."""
    rows = keep.tolist()
    return DomainSplit(
        domain=split.domain,
        split=split.split,
        labels=split.labels[keep],
        fingerprint=f"{split.fingerprint}-{tag}-{digest(rows)}",
        images=split.images[keep] if split.images is not None else None,
        paths=[split.paths[i] for i in rows] if split.paths is not None else None,
        class_subset=split.class_subset,
    )


def class_groups(classes: int, count: int, order_seed: int) -> list[torch.Tensor]:
    """``count`` groups of class indices: a seeded permutation cut into near-equal contiguous parts
    (the first ``classes % count`` groups one larger, as ``np.array_split`` does)."""
    order = torch.randperm(classes, generator=torch.Generator().manual_seed(order_seed))
    return [group.sort().values for group in torch.tensor_split(order, count)]


def _first_shots(labels: torch.Tensor, rows: torch.Tensor, shots: int | None) -> torch.Tensor:
    if shots is None:
        return rows.sort().values
    kept = [rows[labels[rows] == c][:shots] for c in labels[rows].unique()]
    return torch.cat(kept).sort().values


def _shuffled_rows_by_class(labels: torch.Tensor, seed: int) -> dict[int, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        int(c): rows[torch.randperm(len(rows), generator=generator)]
        for c in labels.unique()
        for rows in [torch.nonzero(labels == c).flatten()]
    }


def trial_sessions(sessions: Sessions | None, source: DataSource, id_test: DomainSplit) -> list[Session]:
    """A trial's sessions: ``sessions``' plan, or without it one session on the ID domain
    (``id_test`` its test split)."""
    if sessions is None:
        return [Session(id_test.domain, source.split(id_test.domain, "train"), id_test)]
    return session_plan(sessions, source)


def session_plan(sessions: Sessions, source: DataSource) -> list[Session]:
    """Every session's train and test data, in order."""
    if isinstance(sessions, list):
        return [_domain_session(s, i, source) for i, s in enumerate(sessions)]
    return _split_sessions(sessions, source)


def _domain_session(session: SessionDomain, index: int, source: DataSource) -> Session:
    if session.id not in source.domains:
        known = ", ".join(source.domains)
        raise InputError(f"sessions[{index}].id", f"unknown domain {session.id!r}; known domains: {known}")
    return Session(session.id, source.split(session.id, "train"), source.split(session.id, "test"))


def _split_sessions(spec: SessionSplit, source: DataSource) -> list[Session]:
    if spec.split not in source.domains:
        known = ", ".join(source.domains)
        raise InputError("sessions.split", f"unknown domain {spec.split!r}; known domains: {known}")
    train, test = source.split(spec.split, "train"), source.split(spec.split, "test")
    if spec.by == "class":
        classes = len(source.classnames)
        if spec.count > classes:
            raise InputError(
                "sessions.count", f"{spec.count} sessions need at least as many classes; the source has {classes}"
            )
        plan = []
        for k, group in enumerate(class_groups(classes, spec.count, spec.order_seed)):
            in_train = torch.nonzero(torch.isin(train.labels, group)).flatten()
            in_test = torch.nonzero(torch.isin(test.labels, group)).flatten()
            chosen = _first_shots(train.labels, _seeded(in_train, spec.order_seed + k), spec.shots)
            name = f"{spec.split} classes {','.join(str(int(c)) for c in group)}"
            plan.append(Session(name, subset(train, chosen, f"s{k}"), subset(test, in_test, f"s{k}")))
        return plan
    shards: list[list[torch.Tensor]] = [[] for _ in range(spec.count)]
    for rows in _shuffled_rows_by_class(train.labels, spec.order_seed).values():
        if len(rows) < spec.count:
            raise InputError(
                "sessions.count", f"a class has {len(rows)} training images, fewer than {spec.count} sessions"
            )
        for k, part in enumerate(torch.tensor_split(rows, spec.count)):
            shards[k].append(part[: spec.shots] if spec.shots is not None else part)
    return [
        Session(f"{spec.split} shard {k + 1}", subset(train, torch.cat(parts).sort().values, f"s{k}"), test)
        for k, parts in enumerate(shards)
    ]


def _seeded(rows: torch.Tensor, seed: int) -> torch.Tensor:
    """``rows`` in a seeded random order, so that the first shots of a class are a random draw."""
    return rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))]
