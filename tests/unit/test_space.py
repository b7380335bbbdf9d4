"""Search spaces: the grid over points x seeds, and Optuna's conditional define-by-run space."""

from __future__ import annotations

import pickle

import optuna

from sweeper.run.space import POINT, TRIAL_INDEX, define_by_run, make_searcher, point_of, seed_of

SEARCH = {
    "L": {"int": [1, 16], "log": True},
    "loss": {"choice": ["mse", "kld"]},
    "tau": {"float": [0.5, 4.0], "when": {"loss": "kld"}},
}


def test_grid_runs_every_point_once_per_seed() -> None:
    points = [{"L": 1}, {"L": 2}, {"L": 4}]
    searcher, space, num_samples, total = make_searcher(
        "grid", points, {"L": {"grid": [1, 2, 4]}}, {}, [0, 1], 1, "ood/avg_acc", "max"
    )
    assert searcher is None and num_samples == 1 and total == 6
    grid = space[POINT]["grid_search"]
    assert sorted((p["L"], p["seed"]) for p in grid) == [(1, 0), (1, 1), (2, 0), (2, 1), (4, 0), (4, 1)]
    trial = {POINT: grid[3]}
    assert point_of(trial) == {"L": grid[3]["L"]} and seed_of(trial, [0, 1]) == grid[3]["seed"]


def test_optuna_space_is_conditional_seeded_and_picklable() -> None:
    def sample(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        study.optimize(lambda t: define_by_run(t, SEARCH, {}) or 0.0, n_trials=20)
        return [t.params for t in study.trials]

    first, again = sample(0), sample(0)
    assert first == again
    for params in first:
        assert 1 <= params["L"] <= 16 and isinstance(params["L"], int)
        assert ("tau" in params) == (params["loss"] == "kld")
    assert {p["loss"] for p in first} == {"mse", "kld"}
    searcher, space, num_samples, total = make_searcher(
        "tpe", [], SEARCH, {}, [0, 1, 2], 4, "ood/avg_acc", "max", search_seed=1
    )
    assert space == {} and num_samples == total == 12
    pickle.loads(pickle.dumps(searcher))  # Tune snapshots the searcher with plain pickle


def test_seed_comes_from_the_repeat_index_for_optuna_trials() -> None:
    assert seed_of({"L": 3, TRIAL_INDEX: 2}, [7, 8, 9]) == 9
    assert point_of({"L": 3, TRIAL_INDEX: 2}) == {"L": 3}


def test_an_asha_grid_runs_in_a_seeded_shuffled_order() -> None:
    points = [{"L": L} for L in (1, 2, 4, 8, 16)]

    def order(seed: int, shuffle: bool) -> list[tuple[int, int]]:
        _, space, _, _ = make_searcher(
            "grid",
            points,
            {"L": {"grid": [1, 2, 4, 8, 16]}},
            {},
            [0, 1],
            1,
            "ood/avg_acc",
            "max",
            search_seed=seed,
            shuffle_grid=shuffle,
        )
        return [(p["L"], p["seed"]) for p in space[POINT]["grid_search"]]

    file_order = order(0, shuffle=False)
    assert file_order == sorted(file_order)
    shuffled = order(0, shuffle=True)
    assert shuffled != file_order and sorted(shuffled) == file_order
    assert order(0, shuffle=True) == shuffled and order(1, shuffle=True) != shuffled
