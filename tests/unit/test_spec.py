"""Sweep files: ``sweeper.spec.loading.load`` and ``sweeper validate`` accept good files and name
the field of bad ones."""

from __future__ import annotations

import copy
import http.server
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeper.cli import main
from sweeper.spec.grid import grid_points, trial_count
from sweeper.spec.loading import from_mapping, load
from sweeper.spec.sections import TrainSpec
from sweeper.tracking.uri import check_tracking_uri
from trainables.errors import InputError

MINIMAL = {"name": "mini", "method": "ft", "data": {"id": "photo", "ood": ["sketch"]}}

FULL = {
    "name": "ablation-L",
    "method": "lipsum_ft",
    "model": "zoo/tiny-clip-v1",
    "data": {"source": "shapes", "id": "photo", "ood": ["clipart", "sketch", "painting", "infograph"]},
    "train": {"epochs": 4, "batch_size": 128, "lr": 3.0e-4, "weight_decay": 0.0, "warmup": 0.1},
    "fixed": {"M": 80, "loss": "mse", "lam": 1.0},
    "search": {"L": {"grid": [1, 2, 4, 8, 16]}},
    "seeds": [0, 1, 2],
    "searcher": "grid",
    "num_samples": 1,
    "search_seed": 7,
    "scheduler": {"asha": {"grace_period": 1, "reduction_factor": 2}},
    "objective": {"metric": "val/acc", "mode": "max"},
    "resources": {"cpu": 1, "gpu": 0},
    "max_concurrent": 4,
    "max_retries": 1,
    "tracking": {"uri": None, "experiment": "ablation-L"},
    "report": {"rows": ["L"], "metrics": ["id/acc", "ood/avg_acc", "id/ece", "ood/sketch/nll", "zs/colour/acc"]},
}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracking-URI checks talk to 127.0.0.1; keep a proxy from the environment out of the way."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, content: dict | str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def validate(path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- valid files ---------------------------------------------------------------------------------


def test_minimal_file_is_valid_with_defaults(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, MINIMAL)
    code, out, err = validate(path, capsys)
    assert (code, err) == (0, "")
    assert out.strip() == f"{path}: valid (method ft, searcher grid, 1 trial)"
    spec = load(path)
    assert spec.model == "zoo/tiny-clip-v1" and spec.context_length == 32
    assert spec.train == TrainSpec() and spec.seeds == [0] and spec.scheduler.kind == "fifo"
    assert (
        spec.primary_objective.metric == "val/acc"
        and not spec.primary_objective.oracle
        and spec.max_retries == 2
        and spec.tracking.uri is None
    )
    assert spec.path == path and spec.search_keys == [] and grid_points(spec) == [{}]


def test_full_file_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, FULL)
    code, out, err = validate(path, capsys)
    assert (code, err) == (0, "")
    assert out.strip() == f"{path}: valid (method lipsum_ft, searcher grid, 15 trials)"
    spec = load(path)
    assert spec.scheduler.model_dump() == {"kind": "asha", "grace_period": 1, "reduction_factor": 2}
    assert spec.method_keys({"L": 4}) == {"M": 80, "loss": "mse", "lam": 1.0, "L": 4}
    assert spec.method_params({"L": 4}).L == 4
    assert spec.report_rows == ["L"] and spec.max_concurrent == 4 and spec.search_seed == 7
    assert [p["L"] for p in grid_points(spec)] == [1, 2, 4, 8, 16]


def test_conditional_dim_counts_only_where_its_condition_holds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    content = {
        **FULL,
        "seeds": [0, 1],
        "fixed": {"M": 8},
        "report": {"rows": ["loss", "tau"]},
        "search": {"loss": {"grid": ["mse", "kld"]}, "tau": {"grid": [1.0, 2.0], "when": {"loss": "kld"}}},
    }
    path = write(tmp_path, content)
    spec = load(path)
    assert grid_points(spec) == [{"loss": "mse"}, {"loss": "kld", "tau": 1.0}, {"loss": "kld", "tau": 2.0}]
    code, out, _ = validate(path, capsys)
    assert code == 0 and "6 trials" in out


def test_grid_order_is_file_order_first_key_slowest(tmp_path: Path) -> None:
    content = {
        **MINIMAL,
        "method": "lipsum_ft",
        "search": {"M": {"choice": [4, 8]}, "L": {"grid": [1, 2]}, "lr": {"grid": [1e-4]}},
    }
    spec = load(write(tmp_path, content))
    assert spec.search_keys == ["M", "L", "lr"]
    assert [(p["M"], p["L"]) for p in grid_points(spec)] == [(4, 1), (4, 2), (8, 1), (8, 2)]
    assert spec.train_config({"lr": 0.5}).lr == 0.5 and spec.train_config({}).lr == 3e-4


def test_tpe_counts_samples_times_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    content = {
        **FULL,
        "searcher": "tpe",
        "num_samples": 6,
        "scheduler": "asha",
        "report": {},
        "fixed": {"M": 8},
        "search": {
            "L": {"int": [1, 16], "log": True},
            "lam": {"float": [0.1, 10.0], "log": True},
            "lr": {"float": [1e-5, 1e-3]},
        },
    }
    code, out, _ = validate(write(tmp_path, content), capsys)
    assert code == 0 and "searcher tpe, 18 trials" in out


def test_yaml_details_scientific_floats_and_order(tmp_path: Path) -> None:
    text = (
        "name: sci\nmethod: lipsum_ft\ndata: {id: photo, ood: [sketch]}\n"
        "train: {lr: 1e-4}\nsearch:\n  lam: {grid: [1e-3, 2.5E+0]}\n  L: {grid: [2]}\n"
    )
    spec = load(write(tmp_path, text))
    assert spec.train.lr == 1e-4 and spec.search["lam"].grid == [1e-3, 2.5] and spec.search_keys == ["lam", "L"]


def test_config_hash_ignores_the_path_and_follows_the_content(tmp_path: Path) -> None:
    a = load(write(tmp_path, FULL, "a.yaml"))
    b = load(write(tmp_path, FULL, "b.yaml"))
    c = load(write(tmp_path, {**FULL, "seeds": [0, 1]}, "c.yaml"))
    assert a.config_hash() == b.config_hash() != c.config_hash() and len(a.config_hash()) == 12
    assert "path" not in a.model_dump()
    again = from_mapping(a.model_dump(mode="json"))
    assert again.config_hash() == a.config_hash()


def test_real_paths_that_exist_are_accepted(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"")  # only its existence is checked: no weights are loaded
    for domain in ("photo", "sketch"):
        (tmp_path / "folders" / domain / "cat").mkdir(parents=True)
    database = tmp_path / "db" / "mlflow.db"
    database.parent.mkdir()
    content = {
        **MINIMAL,
        "model": {"arch": "tiny-clip-v1", "pretrained": str(checkpoint)},
        "data": {"source": {"imagefolder": str(tmp_path / "folders")}, "id": "photo", "ood": ["sketch"]},
        "tracking": {"uri": f"sqlite:///{database}"},
    }
    spec = load(write(tmp_path, content))
    assert spec.model.pretrained == str(checkpoint) and spec.context_length == 32


def test_no_ood_domains_needs_no_ood_objective(tmp_path: Path) -> None:
    content = {**MINIMAL, "data": {"id": "photo", "ood": []}}
    with pytest.raises(InputError, match=r"objective\.metric: ood/avg_acc needs at least one data\.ood"):
        load(write(tmp_path, {**content, "objective": {"metric": "ood/avg_acc", "oracle": True}}))
    spec = load(write(tmp_path, content))
    assert spec.report.metrics == ["id/acc", "id/ece"]


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: Any) -> None:
        pass


def test_tracking_uri_checks() -> None:
    check_tracking_uri(None, "tracking.uri")
    check_tracking_uri("sqlite:///mlflow.db", "tracking.uri")  # relative: the working directory
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_tracking_uri(f"http://127.0.0.1:{server.server_port}/", "tracking.uri")
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(InputError, match="refuses the file store") as error:
        check_tracking_uri("./mlruns", "launch --tracking-uri")
    assert error.value.where == "launch --tracking-uri"


# -- bad files: exit code 2, and stderr names the file and the field -------------------------------


def edit(**changes: Any) -> Callable[[Path], dict]:
    """A FULL file with top-level keys replaced (value None deletes the key)."""

    def make(tmp_path: Path) -> dict:
        content = copy.deepcopy(FULL)
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value(tmp_path) if callable(value) else value
        return content

    return make


def sub(section: str, **changes: Any) -> Callable[[Path], dict]:
    """A FULL file with keys inside one section replaced."""

    def section_content(tmp_path: Path) -> dict:
        resolved = {k: v(tmp_path) if callable(v) else v for k, v in changes.items()}
        return {**FULL[section], **resolved}

    return edit(**{section: section_content})


TPE = {"searcher": "tpe", "num_samples": 4, "report": {"metrics": ["id/acc"]}}
BAD: list[tuple[str, Any, str, str]] = [
    # (id, content: YAML text or a maker of a dict, field path in stderr, words in the message)
    ("malformed-yaml", "name: x\nmethod: [ft\ndata: {id: photo}\n", "", "malformed YAML at line"),
    ("duplicate-key", "name: x\nname: y\n", "", "duplicate key 'name'"),
    ("empty-file", "", "", "empty"),
    ("top-level-list", "- name: x\n", "", "must be a mapping"),
    ("missing-file", None, "", "does not exist"),
    ("unknown-top-level-key", edit(colour="red"), "colour", "unknown key; allowed: name, method"),
    ("missing-data", edit(data=None), "data", "required"),
    ("bad-name", edit(name="two words"), "name", "pattern"),
    ("unknown-train-key", sub("train", nesterov=True), "train.nesterov", "unknown key; allowed: epochs"),
    ("epochs-wrong-type", sub("train", epochs="four"), "train.epochs", "valid integer"),
    ("epochs-zero", sub("train", epochs=0), "train.epochs", "greater than or equal to 1"),
    ("negative-lr", sub("train", lr=-0.1), "train.lr", "greater than 0"),
    ("warmup-one", sub("train", warmup=1.0), "train.warmup", "less than 1"),
    ("L-zero-in-grid", edit(search={"L": {"grid": [1, 0]}}), "search.L.grid[1]", "greater than or equal to 1"),
    ("L-over-context", edit(search={"L": {"grid": [1, 2, 40]}}), "search.L.grid[2]", "context length 32"),
    (
        "epochs-zero-in-grid",
        edit(search={"epochs": {"grid": [2, 0]}}),
        "search.epochs.grid[1]",
        "greater than or equal",
    ),
    ("M-zero-in-fixed", sub("fixed", M=0), "fixed.M", "greater than or equal to 1"),
    ("L-over-context-fixed", edit(fixed={"L": 31}, search={"M": {"grid": [1]}}, report={}), "fixed.L", "exceeds"),
    ("unknown-method", edit(method="lipsum"), "method", "unknown method 'lipsum'"),
    (
        "unknown-search-param",
        edit(search={"K": {"grid": [1]}}),
        "search.K",
        "unknown parameter 'K' for method 'lipsum_ft'",
    ),
    ("seed-in-search", edit(search={"seed": {"grid": [1, 2]}}), "search.seed", "seeds are their own axis"),
    ("seed-in-fixed", sub("fixed", seed=3), "fixed.seed", "seeds are their own axis"),
    ("fixed-and-searched", edit(search={"M": {"grid": [1, 2]}}, report={}), "search.M", "both fixed and searched"),
    ("duplicate-seed", edit(seeds=[0, 1, 0]), "seeds[2]", "listed twice"),
    ("unknown-zoo-model", edit(model="zoo/huge-clip"), "model", "unknown zoo model 'huge-clip'"),
    ("not-a-zoo-model", edit(model="ViT-B-16"), "model", "not a zoo model"),
    ("model-wrong-type", edit(model=3), "model", "zoo/<name> or {arch"),
    (
        "unknown-model-key",
        edit(model={"arch": "tiny-clip-v1", "pretrained": "x.pt", "size": 3}),
        "model.size",
        "unknown key",
    ),
    (
        "missing-checkpoint",
        edit(model=lambda t: {"arch": "tiny-clip-v1", "pretrained": str(t / "nope.pt")}),
        "model.pretrained",
        "does not exist",
    ),
    ("unknown-arch", edit(model={"arch": "ViT-Q-99", "pretrained": "/x.pt"}), "model.arch", "unknown architecture"),
    (
        "hub-tag-not-cached",
        edit(model=lambda t: {"arch": "ViT-B-32", "pretrained": "openai", "cache_dir": str(t)}),
        "model.pretrained",
        "not in the local cache",
    ),
    ("unknown-ood-domain", sub("data", ood=["clipart", "cartoon"]), "data.ood[1]", "unknown domain 'cartoon'"),
    ("unknown-id-domain", sub("data", id="photograph"), "data.id", "known domains: photo"),
    ("id-in-ood", sub("data", ood=["photo", "sketch"]), "data.ood[0]", "ID domain"),
    (
        "missing-imagefolder",
        sub("data", source=lambda t: {"imagefolder": str(t / "none")}),
        "data.source.imagefolder",
        "does not exist",
    ),
    ("unknown-searcher", edit(searcher="bayes"), "searcher", "'grid', 'tpe', 'random', 'nsga2' or 'gp'"),
    ("unknown-scheduler", edit(scheduler="hyperband"), "scheduler", "must be fifo, asha"),
    (
        "asha-reduction-factor",
        edit(scheduler={"asha": {"reduction_factor": 1}}),
        "scheduler.asha.reduction_factor",
        "greater than or equal to 2",
    ),
    ("asha-unknown-key", edit(scheduler={"asha": {"brackets": 3}}), "scheduler.asha.brackets", "unknown key"),
    ("tpe-empty-search", edit(**TPE, search={}), "search", "needs at least one search dim"),
    ("grid-num-samples", edit(num_samples=5), "num_samples", "must be 1"),
    ("int-range-reversed", edit(**TPE, search={"L": {"int": [8, 2]}}), "search.L.int", "above the upper end"),
    ("int-range-floats", edit(**TPE, search={"L": {"int": [1, 2.5]}}), "search.L.int[1]", "valid integer"),
    (
        "log-range-from-zero",
        edit(**TPE, search={"tau": {"float": [0.0, 1.0], "log": True}}),
        "search.tau.float[0]",
        "above 0",
    ),
    ("float-range-for-int-param", edit(**TPE, search={"L": {"float": [1, 16]}}), "search.L.float", "valid integer"),
    ("two-kinds-in-a-dim", edit(search={"L": {"grid": [1], "choice": [2]}}), "search.L", "exactly one of"),
    (
        "grid-with-float-range",
        edit(search={"L": {"grid": [1]}, "tau": {"float": [0.1, 1.0]}}),
        "search.tau",
        "searcher grid enumerates grid and choice dims only",
    ),
    ("unknown-objective", edit(objective={"metric": "ood/mean_acc"}), "objective.metric", "unknown metric"),
    ("objective-mode", edit(objective={"metric": "id/acc", "mode": "maximise"}), "objective.mode", "'max' or 'min'"),
    (
        "metric-domain-not-in-ood",
        edit(report={"metrics": ["id/acc", "ood/quickdraw/acc"]}),
        "report.metrics[1]",
        "not in data.ood",
    ),
    ("report-row-not-searched", edit(report={"rows": ["M"]}), "report.rows[0]", "not a search key"),
    ("tracking-file-uri", edit(tracking={"uri": "file:///x/mlruns"}), "tracking.uri", "refuses the file store"),
    (
        "tracking-sqlite-missing-folder",
        edit(tracking=lambda t: {"uri": f"sqlite:///{t}/no/such/mlflow.db"}),
        "tracking.uri",
        "does not exist",
    ),
    ("tracking-unreachable", edit(tracking={"uri": "http://127.0.0.1:9"}), "tracking.uri", "is unreachable"),
    ("tracking-scheme", edit(tracking={"uri": "postgresql://db/mlflow"}), "tracking.uri", "unsupported"),
    (
        "when-unknown-key",
        edit(search={"L": {"grid": [1]}, "tau": {"grid": [1.0], "when": {"beta": 1}}}),
        "search.tau.when.beta",
        "neither another search key nor a fixed key",
    ),
    (
        "when-never-holds",
        edit(
            fixed={"M": 8},
            search={"loss": {"grid": ["mse"]}, "tau": {"grid": [1.0], "when": {"loss": "kl"}}},
            report={},
        ),
        "search.tau.when.loss",
        "never holds",
    ),
    ("negative-resources", edit(resources={"cpu": 0}), "resources.cpu", "greater than 0"),
    ("max-concurrent-zero", edit(max_concurrent=0), "max_concurrent", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("content", "field", "words"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_file_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: Any, field: str, words: str
) -> None:
    path = tmp_path / "sweep.yaml"
    if content is not None:
        write(tmp_path, content if isinstance(content, str) else content(tmp_path))
    code, out, err = validate(path, capsys)
    assert code == 2 and out == ""
    prefix = f"sweeper: error: {path}: {field}: " if field else f"sweeper: error: {path}: "
    assert err.startswith(prefix), err
    assert words in err, err
    assert err.count("\n") == 1, err  # one line, not pydantic's multi-line dump
    with pytest.raises(InputError) as error:
        load(path)
    assert error.value.where == (f"{path}: {field}" if field else str(path))


# -- searching over methods -----------------------------------------------------------------------

MULTI = {
    "name": "multi",
    "method": {"choice": ["lipsum_ft", "ft"]},
    "data": {"id": "photo", "ood": ["sketch"]},
    "search": {
        "L": {"int": [1, 16], "when": {"method": "lipsum_ft"}},
        "loss": {"choice": ["mse", "kld"], "when": {"method": "lipsum_ft"}},
        "tau": {"float": [0.5, 4.0], "when": {"method": "lipsum_ft", "loss": "kld"}},
        "lr": {"float": [1.0e-4, 1.0e-3], "log": True},
    },
    "searcher": "tpe",
    "num_samples": 4,
}


def test_methods_can_be_searched_with_conditional_parameters(tmp_path: Path) -> None:
    spec = load(write(tmp_path, MULTI))
    assert spec.method is None and spec.methods == ["lipsum_ft", "ft"]
    assert list(spec.search) == ["method", "L", "loss", "tau", "lr"]
    assert set(spec.method_keys({"method": "ft", "L": 4})) == set()
    assert spec.method_params({"method": "lipsum_ft", "L": 4}).L == 4


def test_a_method_grid_enumerates_methods(tmp_path: Path) -> None:
    data = {**MINIMAL, "method": {"grid": ["ft", "lipsum_ft"]}, "seeds": [0, 1]}
    spec = load(write(tmp_path, data))
    assert grid_points(spec) == [{"method": "ft"}, {"method": "lipsum_ft"}]
    assert trial_count(spec) == 4


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"search": {"L": {"int": [1, 16]}}}, "search.L", "add when: {method: ...}"),
        ({"method": {"choice": ["ft", "nope"]}}, "method.choice[1]", "unknown method 'nope'"),
        ({"method": {"choice": ["ft", "ft"]}}, "method.choice[1]", "listed twice"),
        ({"method": {"pick": ["ft"]}}, "(top level)", "method must be a method name"),
        ({"search": {"method": {"choice": ["ft"]}}}, "(top level)", "searched twice"),
        ({"fixed": {"bogus": 1}}, "fixed.bogus", "unknown parameter 'bogus'"),
    ],
)
def test_bad_method_search_names_the_field(tmp_path: Path, change: dict, where: str, words: str) -> None:
    data = {**copy.deepcopy(MULTI), **change}
    with pytest.raises(InputError) as info:
        load(write(tmp_path, data))
    assert where in info.value.where and words in info.value.message, info.value


def test_method_search_trial_configs_get_only_their_method_parameters() -> None:
    from sweeper.run.trial import trial_config
    from sweeper.run.trial_entry import SweepContext

    context = SweepContext(
        tracking=None,
        base={  # type: ignore[arg-type]
            "method": "lipsum_ft",
            "data": {"id": "photo", "ood": []},
            "train": {"epochs": 1},
            "params": {"M": 8},
        },
        seeds=[0],
    )
    ft = trial_config(context, {"point": {"method": "ft", "lr": 1e-3}})
    assert ft.method == "ft" and ft.params == {} and ft.train.lr == 1e-3
    lipsum = trial_config(context, {"point": {"method": "lipsum_ft", "L": 2}})
    assert lipsum.params == {"M": 8, "L": 2}


def test_eval_every_needs_an_id_or_train_objective() -> None:
    from sweeper.spec.loading import from_mapping
    from trainables.errors import InputError

    base = {"name": "ee", "method": "ft", "data": {"id": "photo", "ood": ["sketch"]}, "train": {"eval_every": 2}}
    assert from_mapping({**base, "objective": {"metric": "val/acc", "mode": "max"}}).train.eval_every == 2
    with pytest.raises(InputError, match=r"train\.eval_every: must be 1 with objective 'ood/avg_acc'"):
        from_mapping({**base, "objective": {"metric": "ood/avg_acc", "mode": "max", "oracle": True}})


def test_retention_false_refuses_a_zero_shot_metric_naming_the_field() -> None:
    from sweeper.spec.loading import from_mapping
    from trainables.errors import InputError

    base = {
        "name": "r",
        "method": "ft",
        "data": {"id": "photo", "ood": ["sketch"], "retention": False},
        "objective": {"metric": "val/acc", "mode": "max"},
    }
    assert from_mapping(base).data.retention is False
    with pytest.raises(InputError, match=r"report.metrics\[1\]: 'zs/colour/acc' is a zero-shot retention metric"):
        from_mapping({**base, "report": {"metrics": ["id/acc", "last/zs/colour/acc"]}})
    with pytest.raises(InputError, match=r"objective\.metric: 'zs/shape/acc'"):
        from_mapping({**base, "objective": {"metric": "zs/shape/acc", "mode": "max", "oracle": True}})
    with pytest.raises(InputError, match=r"train\.precision"):
        from_mapping({**base, "train": {"precision": "fp16"}})


def test_an_objective_list_loads_with_its_order_and_the_first_is_primary() -> None:
    from sweeper.spec.loading import from_mapping

    sweep = {"name": "mo", "method": "ft", "data": {"id": "photo", "ood": ["sketch"], "ood_val": ["painting"]}}
    objectives = [{"metric": "val/acc", "mode": "max"}, {"metric": "robustness/effective_val", "mode": "max"}]
    spec = from_mapping(
        {**sweep, "searcher": "nsga2", "search": {"lr": {"float": [1e-5, 1e-3]}}, "objective": objectives}
    )
    assert [(o.metric, o.mode) for o in spec.objectives] == [("val/acc", "max"), ("robustness/effective_val", "max")]
    assert spec.multi_objective and spec.primary_objective.metric == "val/acc"
    assert spec.objective_field(1) == "objective[1].metric"
    single = from_mapping({**sweep, "objective": {"metric": "val/nll", "mode": "min"}})
    assert not single.multi_objective and single.objective_field(0) == "objective.metric"


def test_posthoc_is_part_of_the_hash_only_when_set() -> None:
    from sweeper.spec.loading import from_mapping

    sweep = {"name": "ph", "method": "ft", "data": {"id": "photo", "ood": ["sketch"]}}
    plain = from_mapping(sweep)
    assert "posthoc" not in plain.canonical()  # sweeps written before posthoc keep their hash
    wise = from_mapping({**sweep, "posthoc": {"wise": {"alphas": [1.0, 0.0, 0.5]}}})
    assert wise.posthoc.wise is not None and wise.posthoc.wise.alphas == [0.0, 0.5, 1.0]
    assert wise.config_hash() != plain.config_hash()
