"""Where a sweep's Optuna study lives (``sweeper.run.optuna_storage``): beside a sqlite MLflow
store, in its own schema of a PostgreSQL one, where ``tracking.optuna_storage`` says for an MLflow
server, nowhere for a grid. MLflow's store keeps working beside it; a relaunch gets a study of its
own; an OptunaSearch holding the storage survives Tune's pickling (``sweeper resume``); bad
``tracking.optuna_storage`` values and ``sweeper ui --optuna`` misuse exit 2 naming what is wrong.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import postgres_server
from sqlalchemy import create_engine, inspect, text

from sweeper.cli import main
from sweeper.commands import ui
from sweeper.run.optuna_storage import SCHEMA, storage_url, study_kwargs
from sweeper.run.space import define_by_run
from sweeper.spec.loading import from_mapping
from sweeper.spec.schema import SweepSpec

ROOT = Path(__file__).resolve().parents[2]
SWEEP: dict[str, Any] = {
    "name": "opt",
    "method": "ft",
    "data": {"source": "shapes", "id": "photo", "ood": ["sketch"]},
    "search": {"lr": {"float": [1e-4, 1e-2], "log": True}},
    "searcher": "random",
    "num_samples": 3,
}
SEARCH = {"lr": {"float": [1e-4, 1e-2], "log": True}}


def sweep(**changes: Any) -> SweepSpec:
    return from_mapping({**SWEEP, **changes})


def searcher(kwargs: dict[str, Any]) -> Any:
    """The OptunaSearch that launch builds (define-by-run space, metric and mode on the searcher)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    space = functools.partial(define_by_run, search=SEARCH, fixed={})
    sampler = optuna.samplers.RandomSampler(seed=0)
    return OptunaSearch(space=space, metric="ood/avg_acc", mode="max", sampler=sampler, **kwargs)


def run_trials(search: Any, ids: list[str]) -> None:
    for n, trial_id in enumerate(ids):
        search.suggest(trial_id)
        search.on_trial_complete(trial_id, {"ood/avg_acc": 0.5 + n / 10, "training_iteration": 1})


def mlflow_works(uri: str) -> None:
    """MLflow opens the store, writes a run and reads it back."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("side") or client.get_experiment(client.create_experiment("side"))
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def tables(url: str, schema: str | None = None) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def test_sqlite_study_lives_in_a_sibling_file_and_mlflow_still_works(tmp_path: Path) -> None:
    import optuna

    tmp_path = tmp_path.resolve()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_works(uri)  # an existing store, as on a second launch
    kwargs = study_kwargs(sweep(), uri)
    assert set(kwargs) == {"storage", "study_name"} and kwargs["study_name"] == "opt"
    assert kwargs["storage"].url == f"sqlite:///{tmp_path / 'mlflow.optuna.db'}"
    run_trials(searcher(kwargs), ["a", "b"])

    assert {"studies", "trials", "alembic_version"} <= tables(kwargs["storage"].url)
    assert "studies" not in tables(uri)  # nothing of Optuna's in MLflow's file
    mlflow_works(uri)
    study = optuna.load_study(study_name="opt", storage=kwargs["storage"].url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.user_attrs == {"sweeper.sweep": "opt", "sweeper.config_hash": sweep().config_hash()}


def test_a_fresh_store_is_made_by_mlflow_after_the_study(tmp_path: Path) -> None:
    # launch builds its searcher before MLflow creates the store: the order of a first launch.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_trials(searcher(study_kwargs(sweep(), uri)), ["a"])
    mlflow_works(uri)


def test_optuna_refuses_mlflows_file_which_is_why_the_study_has_its_own(tmp_path: Path) -> None:
    """The clash the sibling file avoids: one alembic_version table, two schema histories."""
    import optuna

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_works(uri)
    with pytest.raises(RuntimeError, match="no longer compatible with the table schema"):
        optuna.storages.RDBStorage(uri)


def test_a_relaunch_gets_a_study_of_its_own_and_grids_none(tmp_path: Path) -> None:
    import optuna

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first, second = study_kwargs(sweep(), uri), study_kwargs(sweep(), uri)
    assert (first["study_name"], second["study_name"]) == ("opt", "opt#2")
    run_trials(searcher(first), ["a", "b"])
    run_trials(searcher(second), ["a"])
    counts = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(first["storage"].url)}
    assert counts == {"opt": 2, "opt#2": 1}
    assert study_kwargs(sweep(searcher="grid", search={"lr": {"grid": [0.1]}}, num_samples=1), uri) == {}


def test_an_mlflow_server_needs_tracking_optuna_storage(tmp_path: Path) -> None:
    server = "http://127.0.0.1:5000"  # study_kwargs never asks the server: it cannot see its database
    assert study_kwargs(sweep(), server) == {}
    assert storage_url(server) is None
    url = f"sqlite:///{tmp_path.resolve() / 'studies.db'}"
    kwargs = study_kwargs(sweep(tracking={"uri": None, "optuna_storage": url}), server)
    assert kwargs["storage"].url == url and kwargs["study_name"] == "opt"
    run_trials(searcher(kwargs), ["a"])
    assert "studies" in tables(url)


def test_sqlite_paths_are_made_absolute_for_resume_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    here = tmp_path.resolve()
    assert storage_url("sqlite:///mlflow.db") == f"sqlite:///{here / 'mlflow.optuna.db'}"
    assert storage_url("http://mlflow:5000", "sqlite:///o.db?timeout=30") == f"sqlite:///{here / 'o.db'}?timeout=30"


def test_postgresql_urls_get_optunas_own_schema() -> None:
    base = "postgresql+psycopg2://u:p%40ss@db:5432/mlflow"
    assert storage_url(base) == f"{base}?options=-csearch_path%3D{SCHEMA}"
    assert storage_url(f"{base}?sslmode=require&options=-cstatement_timeout%3D5000") == (
        f"{base}?sslmode=require&options=-cstatement_timeout%3D5000+-csearch_path%3D{SCHEMA}"
    )
    chosen = f"{base}?options=-csearch_path%3Dmine"
    assert storage_url("http://mlflow:5000", chosen) == chosen  # the user's own schema is kept


def test_searcher_state_restores_in_a_fresh_process_onto_the_same_study(tmp_path: Path) -> None:
    """Tune checkpoints the searcher by pickling it (OptunaSearch.save); `sweeper resume` restores
    it in a new driver. RDBStorage pickles its URL and reconnects: no new study, trials go on."""
    import optuna

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    kwargs = study_kwargs(sweep(), uri)
    search = searcher(kwargs)
    run_trials(search, ["a"])
    search.suggest("b")  # running when the driver died
    state = tmp_path / "searcher-state.pkl"
    search.save(str(state))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}, {str(ROOT / "tests" / "unit")!r}]
        from test_optuna_storage import searcher
        restored = searcher({{}})  # Tune builds nothing: the pickled one replaces this one's state
        restored.restore({str(state)!r})
        restored.on_trial_complete("b", {{"ood/avg_acc": 0.9, "training_iteration": 1}})
        restored.suggest("c")
        restored.on_trial_complete("c", {{"ood/avg_acc": 0.7, "training_iteration": 1}})
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=ROOT)
    summaries = optuna.get_all_study_summaries(kwargs["storage"].url)
    assert [(s.study_name, s.n_trials) for s in summaries] == [("opt", 3)]
    study = optuna.load_study(study_name="opt", storage=kwargs["storage"].url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert study.best_value == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mysql://u@db/optuna", "'mysql'"),
        ("optuna.db", "not a URL"),
        ("sqlite:////no/such/folder/optuna.db", "does not exist"),
        ("postgresql+psycopg2://u:s3cret@db:54x2/optuna", "not a valid URL"),
        ("postgresql+psycopg2://u@db:5432", "names no database"),
        ("MLFLOW", "alembic_version"),
        ("GRID", "searcher grid"),
    ],
)
def test_bad_optuna_storage_exits_2_naming_the_field(
    value: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    content: dict[str, Any] = {**SWEEP, "tracking": {"uri": store, "optuna_storage": value}}
    if value == "MLFLOW":
        content["tracking"]["optuna_storage"] = store
    if value == "GRID":
        content.update(searcher="grid", search={"lr": {"grid": [0.1]}}, num_samples=1)
        content["tracking"]["optuna_storage"] = f"sqlite:///{tmp_path / 'optuna.db'}"
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "tracking.optuna_storage" in err and words in err and "s3cret" not in err


def test_an_unset_key_leaves_the_config_hash_alone() -> None:
    # The hash of this sweep before tracking.optuna_storage existed: `sweeper resume` compares them.
    assert "optuna_storage" not in sweep().canonical()["tracking"]
    assert sweep().config_hash() == "cf067800c27a"
    assert sweep(tracking={"optuna_storage": "sqlite:////tmp/x.db"}).config_hash() != sweep().config_hash()


def test_ui_optuna_refuses_what_it_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mlflow.db").touch()
    store = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    cases = [
        ([*store, "--optuna"], ["--optuna", "no Optuna storage", "mlflow.optuna.db"]),
        (["--tracking-uri", "http://127.0.0.1:5000", "--optuna"], ["--optuna-storage", "tracking.optuna_storage"]),
        ([*store, "--optuna", "--optuna-storage", "mysql://db/x"], ["--optuna-storage", "'mysql'"]),
        ([*store, "--optuna-port", "5001"], ["--optuna-port", "only applies with --optuna"]),
        ([*store, "--optuna", "--host", "0.0.0.0"], ["--host", "--allow-remote"]),
    ]
    for args, words in cases:
        assert main(["ui", *args]) == 2, args
        err = capsys.readouterr().err
        assert all(w in err for w in words), (args, err)
    # With the studies there, two servers cannot share a port.
    study_kwargs(sweep(), f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["ui", *store, "--optuna", "--port", "5000", "--optuna-port", "5000"]) == 2
    assert "--optuna-port" in capsys.readouterr().err
    monkeypatch.setattr(ui.importlib.util, "find_spec", lambda name: None)
    assert main(["ui", *store, "--optuna"]) == 2
    assert "optuna-dashboard is not installed" in capsys.readouterr().err


def test_dashboard_reads_its_storage_from_a_private_file(tmp_path: Path) -> None:
    url = 'postgresql+psycopg2://u:p"\\ss@db/x?options=-csearch_path%3Doptuna'
    with ui._dashboard_config(url) as config:
        assert tomllib.loads(config.read_text())["optuna_dashboard"]["storage"] == url
        assert config.stat().st_mode & 0o077 == 0
        command = ui.optuna_command(config, "127.0.0.1", 5001)
        assert command[1:] == ["--host", "127.0.0.1", "--port", "5001", "--from-config", str(config)]
        assert 'p"\\ss' not in " ".join(command)  # no password in the process list
    assert not config.exists()


def test_only_the_ui_starts_optuna_dashboard_and_never_imports_it() -> None:
    for package in ("sweeper", "trainables", "dashboards"):
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            assert "import optuna_dashboard" not in source and "from optuna_dashboard" not in source, path


@pytest.mark.slow
def test_postgresql_study_and_mlflow_share_one_database() -> None:
    import optuna

    with postgres_server() as database:
        mlflow_works(database)
        kwargs = study_kwargs(sweep(), database)
        assert "search_path" in kwargs["storage"].url
        run_trials(searcher(kwargs), ["a", "b"])
        mlflow_works(database)
        # The same database given as an MLflow server's tracking.optuna_storage: the same schema.
        served = study_kwargs(sweep(tracking={"optuna_storage": database}), "http://mlflow:5000")
        assert served["study_name"] == "opt#2"
        run_trials(searcher(served), ["a"])
        assert {"studies", "trials", "alembic_version"} <= tables(database, SCHEMA)
        assert {"experiments", "runs", "alembic_version"} <= tables(database, "public")
        assert "studies" not in tables(database, "public")
        engine = create_engine(database)
        with engine.connect() as sql:
            mlflow_revision = sql.execute(text("SELECT version_num FROM public.alembic_version")).scalar()
            optuna_revision = sql.execute(text(f"SELECT version_num FROM {SCHEMA}.alembic_version")).scalar()
        engine.dispose()
        assert mlflow_revision != optuna_revision
        summaries = optuna.get_all_study_summaries(kwargs["storage"].url)
        assert sorted((s.study_name, s.n_trials) for s in summaries) == [("opt", 2), ("opt#2", 1)]
        mlflow_works(database)
