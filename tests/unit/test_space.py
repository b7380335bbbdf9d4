"""Search spaces: the grid over points x seeds, and Optuna's conditional define-by-run space."""

from __future__ import annotations

import functools
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sweeper.run.space import POINT, TRIAL_INDEX, define_by_run, make_searcher, point_of, seed_of
from trainables.errors import InputError

SEARCH = {
    "L": {"int": [1, 16], "log": True},
    "loss": {"choice": ["mse", "kld"]},
    "tau": {"float": [0.5, 4.0], "when": {"loss": "kld"}},
}


def test_grid_runs_every_point_once_per_seed() -> None:
    points = [{"L": 1}, {"L": 2}, {"L": 4}]
    searcher, space, num_samples, total = make_searcher(
        "grid", points, {"L": {"grid": [1, 2, 4]}}, {}, [0, 1], 1, [("ood/avg_acc", "max")]
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
        "tpe", [], SEARCH, {}, [0, 1, 2], 4, [("ood/avg_acc", "max")], search_seed=1
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
            [("ood/avg_acc", "max")],
            search_seed=seed,
            shuffle_grid=shuffle,
        )
        return [(p["L"], p["seed"]) for p in space[POINT]["grid_search"]]

    file_order = order(0, shuffle=False)
    assert file_order == sorted(file_order)
    shuffled = order(0, shuffle=True)
    assert shuffled != file_order and sorted(shuffled) == file_order
    assert order(0, shuffle=True) == shuffled and order(1, shuffle=True) != shuffled


# -- several objectives, the new searchers, seeds and unscored trials ---------------------------------

TWO = [("val/acc", "max"), ("val/nll", "min")]
STATIC = {"L": {"int": [1, 16], "log": True}, "loss": {"choice": ["mse", "kld"]}, "lam": {"float": [0.1, 4.0]}}


def study_of(searcher) -> optuna.Study:
    """The Optuna study behind a make_searcher result (SeedRepeater -> OptunaSearch)."""
    return searcher.inner._ot_study


def fake_values(config: dict) -> dict[str, float]:
    acc = 0.5 + 0.02 * config["L"] - (0.1 if config["loss"] == "kld" else 0.0)
    return {"val/acc": acc, "val/nll": 1.0 / (1.0 + config.get("lam", 1.0)) + 0.01 * config["L"]}


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2", "gp"])
@pytest.mark.parametrize("objectives", [TWO, TWO[:1]], ids=["two", "one"])
def test_every_searcher_suggests_and_takes_results_of_every_objective(name: str, objectives: list) -> None:
    searcher, space, num_samples, total = make_searcher(name, [], STATIC, {}, [0], 12, objectives, search_seed=0)
    assert space == {} and num_samples == total == 12
    assert searcher.metric == ([m for m, _ in objectives] if len(objectives) > 1 else objectives[0][0])
    for i in range(12):
        config = searcher.suggest(f"t{i}")
        assert 1 <= config["L"] <= 16 and config["loss"] in ("mse", "kld") and config[TRIAL_INDEX] == 0
        searcher.on_trial_complete(f"t{i}", {**fake_values(config), "id/acc": 0.1})
    study = study_of(searcher)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 12
    expected = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE][: len(objectives)]
    assert study.directions == expected
    assert all(len(t.values) == len(objectives) for t in study.trials)
    assert study.best_trials  # a front (or the best trial) exists
    pickle.loads(pickle.dumps(searcher))  # Tune snapshots the searcher with plain pickle


def test_the_same_search_seed_draws_the_same_points() -> None:
    def draws(seed: int) -> list[dict]:
        searcher, *_ = make_searcher("nsga2", [], STATIC, {}, [0], 5, TWO, search_seed=seed)
        return [searcher.suggest(f"t{i}") for i in range(5)]

    assert draws(3) == draws(3) and draws(3) != draws(4)


def test_seeds_are_averaged_for_every_objective_and_survive_save_and_restore(tmp_path: Path) -> None:
    seeds = [0, 1, 2]
    searcher, *_ = make_searcher("tpe", [], STATIC, {}, seeds, 2, TWO, search_seed=0)
    configs = [searcher.suggest(f"t{i}") for i in range(3)]
    assert [c[TRIAL_INDEX] for c in configs] == [0, 1, 2]  # one point, each seed once
    assert [seed_of(c, seeds) for c in configs] == seeds and len({str(point_of(c)) for c in configs}) == 1
    searcher.on_trial_complete("t0", {"val/acc": 0.60, "val/nll": 0.90})
    searcher.on_trial_complete("t2", {"val/acc": 0.70, "val/nll": 0.50})
    assert not [t for t in study_of(searcher).trials if t.state.is_finished()]  # a seed is still running
    searcher.save(str(tmp_path / "searcher.json"))  # JSON around Optuna's own pickle
    assert json.loads((tmp_path / "searcher.json").read_text())["ended"]["t0"] == [0.60, 0.90]

    restored, *_ = make_searcher("tpe", [], STATIC, {}, seeds, 2, TWO, search_seed=0)
    restored.restore(str(tmp_path / "searcher.json"))
    restored.on_trial_complete("t1", {"val/acc": 0.80, "val/nll": 0.40})
    told = study_of(restored).trials[0]
    assert told.state == optuna.trial.TrialState.COMPLETE
    assert told.values == pytest.approx([(0.60 + 0.80 + 0.70) / 3, (0.90 + 0.40 + 0.50) / 3])
    assert told.params == {k: v for k, v in point_of(configs[0]).items()}
    following = restored.suggest("t3")  # the next point starts a new group at seed index 0
    assert following[TRIAL_INDEX] == 0 and len(study_of(restored).trials) == 2


@pytest.mark.parametrize("result", [{"val/acc": 0.7}, {"val/acc": 0.7, "val/nll": math.nan}, None])
def test_a_trial_without_every_objective_is_counted_and_fails_its_point(result: dict | None) -> None:
    searcher, *_ = make_searcher("nsga2", [], STATIC, {}, [0, 1], 2, TWO, search_seed=0)
    for i in range(4):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {"val/acc": 0.8, "val/nll": 0.3})
    searcher.on_trial_complete("t1", result)  # the other seed of the same point
    searcher.on_trial_complete("t2", {"val/acc": 0.8, "val/nll": 0.3})
    searcher.on_trial_complete("t3", error=True)  # an error is a failure, not an unscored trial
    assert searcher.unscored == ["t1"] and searcher.failed_points == ["t0", "t2"]
    states = [t.state for t in study_of(searcher).trials]
    assert states == [optuna.trial.TrialState.FAIL] * 2  # told, not left RUNNING


def test_only_gp_imports_torch_in_the_driver() -> None:
    code = (
        "import sys\nfrom sweeper.run.space import make_searcher\n"
        "for name in ('tpe', 'random', 'nsga2'):\n"
        "    s, *_ = make_searcher(name, [], {'x': {'float': [0, 1]}}, {}, [0], 3, [('a', 'max'), ('b', 'max')])\n"
        "    [s.suggest(f't{i}') for i in range(3)]\n"
        "print('torch' in sys.modules)\n"
        "make_searcher('gp', [], {'x': {'float': [0, 1]}}, {}, [0], 3, [('a', 'max')])\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split()[-2:] == ["False", "True"]


def test_gp_refuses_conditional_dims_naming_searcher() -> None:
    from sweeper.spec.loading import from_mapping

    sweep = {
        "name": "gp-when",
        "method": "lipsum_ft",
        "data": {"source": "shapes", "id": "photo", "ood": ["sketch"]},
        "fixed": {"M": 8},
        "searcher": "gp",
        "num_samples": 4,
        "search": {"loss": {"choice": ["mse", "kld"]}, "tau": {"float": [0.5, 4.0], "when": {"loss": "kld"}}},
    }
    with pytest.raises(InputError) as raised:
        from_mapping(sweep)
    assert raised.value.where.endswith("searcher") and "search.tau" in str(raised.value)
    del sweep["search"]["tau"]
    assert from_mapping(sweep).searcher == "gp"


def test_a_sweep_launched_with_rays_repeater_still_restores(tmp_path: Path) -> None:
    # What a sweep launched before SeedRepeater pickled in tuner.pkl: resume unpickles that object
    # (Tune does not ask us for a new searcher) and loads its checkpoint into it.
    from ray.tune.search import ConcurrencyLimiter, Repeater, SearchGenerator
    from ray.tune.search.optuna import OptunaSearch

    space = functools.partial(define_by_run, search=SEARCH, fixed={})
    old = Repeater(
        OptunaSearch(space=space, metric="val/acc", mode="max", sampler=optuna.samplers.TPESampler(seed=0)), repeat=2
    )
    pickled = pickle.dumps(ConcurrencyLimiter(old, 4))
    running = SearchGenerator(pickle.loads(pickled))
    first = [running.searcher.suggest(f"t{i}") for i in range(3)]
    running.searcher.on_trial_complete("t0", {"val/acc": 0.5})
    running.searcher.on_trial_complete("t1", {"val/acc": 0.7})
    running.save_to_dir(str(tmp_path), "old")

    resumed = SearchGenerator(pickle.loads(pickled))
    resumed.restore_from_dir(str(tmp_path))
    again = resumed.searcher.suggest("t3")  # the second seed of the third trial's point
    assert point_of(again) == point_of(first[2]) and seed_of(again, [5, 6]) == 6
    base = resumed.searcher.searcher.searcher
    assert base._ot_study.trials[0].value == pytest.approx(0.6)


@pytest.mark.parametrize("references", [[], [{"method": "ft", "reference": "ft"}]], ids=["plain", "references"])
def test_tune_checkpoints_our_searchers_as_one_json_file_and_resume_loads_it(tmp_path: Path, references) -> None:
    # Tune saves the innermost object without a `searcher` attribute with save() and every wrapper
    # with get_state(); resume unpickles the launch's searcher (tuner.pkl) and loads the files.
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    searcher, *_ = make_searcher("nsga2", [], STATIC, {}, [0, 1], 3, TWO, references=references)
    pickled = pickle.dumps(ConcurrencyLimiter(searcher, 8))
    running = SearchGenerator(pickle.loads(pickled))
    handed = [running.searcher.suggest(f"t{i}") for i in range(len(references) * 2 + 3)]
    for trial_id in ("t0", "t1"):
        running.searcher.on_trial_complete(trial_id, {"val/acc": 0.5, "val/nll": 0.7})
    running.save_to_dir(str(tmp_path), "s")
    saved = json.loads(next(tmp_path.glob("searcher-state-*.pkl")).read_text())  # Tune's file name, our JSON
    assert ("pending" in saved) == bool(references)

    resumed = SearchGenerator(pickle.loads(pickled))
    resumed.restore_from_dir(str(tmp_path))
    following = resumed.searcher.suggest("next")
    assert point_of(following) == point_of(handed[-1]) and following[TRIAL_INDEX] == 1  # the point's second seed
