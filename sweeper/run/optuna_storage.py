"""Where a sweep's Optuna study lives: in the sweep's own database, so that optuna-dashboard can
show the search while it runs and after it ends.

- sqlite MLflow store ``/x/mlflow.db``: a sibling file ``/x/mlflow.optuna.db``. Optuna's tables
  cannot share MLflow's file: both keep their schema revision in one ``alembic_version`` table, so
  Optuna refuses a file MLflow made ("no longer compatible with the table schema", after creating
  its tables in it) and MLflow could not migrate a file holding Optuna's revision.
- PostgreSQL (a ``postgresql://`` store, or ``tracking.optuna_storage``): the same database, in
  the schema ``optuna`` (``search_path`` set through libpq's ``options``), for the same reason:
  each alembic keeps its own ``alembic_version`` in its own schema.
- an MLflow server (``http(s)://``): the driver cannot see the server's database, so the study
  lives where ``tracking.optuna_storage`` says, and in memory (as before) without it.
- grid sweeps run no Optuna study.

Each launch gets a study of its own: the first is named after the sweep, a relaunch of the same
name ``NAME#2``, ``NAME#3``..., so trials of two launches never mix in one study (as each launch
has its own MLflow parent run). ``sweeper resume`` does not come here: Ray Tune restores the
pickled searcher, which holds its study (RDBStorage pickles its URL and reconnects).

Imports nothing heavy at module level: the spec checks and ``sweeper ui`` use it.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.tracking.uri import check_tracking_uri, redact_uri
from trainables.errors import InputError

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

    from sweeper.spec.schema import SweepSpec

SCHEMA = "optuna"  # PostgreSQL schema of Optuna's tables, beside MLflow's in `public`
SUFFIX = ".optuna.db"  # sibling of a sqlite MLflow store
RELAUNCH = "#"  # cannot occur in a sweep name, so NAME#2 never names another sweep's study
FIELD = "tracking.optuna_storage"
USAGE = "use sqlite:////abs/path/optuna.db or postgresql+psycopg2://USER@HOST:PORT/DB"


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def is_postgresql(url: str) -> bool:
    scheme = _scheme(url)
    return scheme == "postgresql" or scheme.startswith("postgresql+")


def check_storage_url(url: str, field: str = FIELD) -> None:
    """Refuse an Optuna storage URL that is not sqlite or PostgreSQL, or that cannot be opened."""
    scheme = _scheme(url)
    if scheme == "sqlite":
        check_tracking_uri(url, field)  # the same rules: a file named, in a folder that exists
        return
    if is_postgresql(url):
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as error:
            raise InputError(field, f"{redact_uri(url)} is not a valid URL ({error})") from None
        if not parts.path.strip("/"):
            raise InputError(field, f"{redact_uri(url)} names no database; {USAGE}")
        return
    shown = f"scheme {scheme!r}" if scheme else f"{redact_uri(url)!r}, which is not a URL"
    raise InputError(field, f"an Optuna storage must be a sqlite or PostgreSQL URL, not {shown}; {USAGE}")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    return Path(url[len("sqlite:///") :].split("?", 1)[0]).expanduser()


def _with_schema(url: str) -> str:
    """``url`` with ``search_path`` set to :data:`SCHEMA`, unless its ``options`` already set one."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query).get("options", "")
    if "search_path" in options:
        return url  # the user chose the schema
    query = [(k, v) for k, v in query if k != "options"]
    query.append(("options", f"{options} -csearch_path={SCHEMA}".strip()))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def storage_url(tracking_uri: str, override: str | None = None) -> str | None:
    """The Optuna storage URL for an MLflow store (``override`` wins); None for a server's store
    without an override (the study then lives in memory)."""
    url = override
    if url is None:
        scheme = _scheme(tracking_uri)
        if scheme == "sqlite":
            path = sqlite_path(tracking_uri)
            url = f"sqlite:///{path.parent / (path.stem + SUFFIX)}"
        elif is_postgresql(tracking_uri):
            url = tracking_uri
        else:
            return None
    if _scheme(url) == "sqlite":
        # Absolute: the searcher pickles its storage, and `sweeper resume` may run from elsewhere.
        query = url.partition("?")[2]
        return f"sqlite:///{sqlite_path(url).resolve()}" + (f"?{query}" if query else "")
    return _with_schema(url) if is_postgresql(url) else url


def open_storage(url: str, field: str, create: bool = True) -> RDBStorage:
    """An RDBStorage on ``url``: Optuna's tables made (``create``) in their own file or schema.
    Any failure is an InputError naming ``field``."""
    import optuna
    import sqlalchemy

    shown = redact_uri(url)
    try:
        if _scheme(url) == "sqlite" and sqlite_path(url).is_file():
            engine = sqlalchemy.create_engine(url)
            tables = set(sqlalchemy.inspect(engine).get_table_names())
            engine.dispose()
            if "experiments" in tables and "studies" not in tables:
                raise InputError(
                    field,
                    f"{shown} is an MLflow store; Optuna's tables cannot share its file (both keep an "
                    f"alembic_version table). Use a file of its own, e.g. {storage_url(url)}",
                )
        if is_postgresql(url) and create and f"search_path={SCHEMA}" in urllib.parse.unquote(url):
            engine = sqlalchemy.create_engine(url)
            with engine.begin() as sql:
                sql.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            engine.dispose()
        return optuna.storages.RDBStorage(url, skip_table_creation=not create)
    except InputError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ImportError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(field, f"cannot open the Optuna storage {shown}: {redact_uri(reason)}") from None


def _directions(spec: SweepSpec) -> list[Any]:
    from optuna.study import StudyDirection

    return [StudyDirection.MAXIMIZE if o.mode == "max" else StudyDirection.MINIMIZE for o in spec.objectives]


def new_study(storage: RDBStorage, spec: SweepSpec) -> str:
    """Create this launch's study: NAME, or NAME#n after earlier launches; returns its name."""
    from optuna.exceptions import DuplicatedStudyError

    taken = {s.study_name for s in storage.get_all_studies()}
    number = 1
    while True:
        name = spec.name if number == 1 else f"{spec.name}{RELAUNCH}{number}"
        number += 1
        if name in taken:
            continue
        try:
            study_id = storage.create_new_study(_directions(spec), name)
        except DuplicatedStudyError:  # another launch of the same name took it meanwhile
            continue
        # Shown by optuna-dashboard and optuna.load_study: which sweep file ran this study.
        storage.set_study_user_attr(study_id, "sweeper.sweep", spec.name)
        storage.set_study_user_attr(study_id, "sweeper.config_hash", spec.config_hash())
        return name


def study_kwargs(spec: SweepSpec, tracking_uri: str) -> dict[str, Any]:
    """Keyword arguments for ``OptunaSearch(...)`` that keep this launch's study in the sweep's
    database (``storage``, ``study_name``); {} for a grid, or a server store without
    ``tracking.optuna_storage`` (an in-memory study). Creates the study (see the module notes)."""
    if spec.searcher == "grid":
        return {}
    override = spec.tracking.optuna_storage
    url = storage_url(tracking_uri, override)
    if url is None:
        return {}
    storage = open_storage(url, FIELD if override else "tracking.uri")
    # OptunaSearch loads a study that exists (load_if_exists=True): this one, made here.
    return {"storage": storage, "study_name": new_study(storage, spec)}
