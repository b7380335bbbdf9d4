"""Bad input, table-driven: malformed sweep files and CLI calls end as ONE clean error line.

The convention under test (``trainables.errors``, ``sweeper.cli``): anything the user got wrong
raises :class:`InputError` (its ``where`` names the field or file), and ``sweeper.cli.main``
returns 2 and prints exactly one line ``sweeper: error: ...`` on stderr that names the problem,
before any compute starts: no traceback, no Ray, no MLflow store or ``sweeps/`` folder created.

``CASES`` is the table: one row per malformed input, each a small maker that writes what it needs
into the test's folder and returns the ``sweeper`` arguments, plus the words the error line must
contain and, for sweep files, the field that ``InputError.where`` names. ``BAD_INPUTS`` lists their
ids (docs quote its length). Three hypothesis tests then fuzz the spec loader (``from_mapping`` and
``load`` on arbitrary structures, ``from_mapping`` on a valid sweep with fields set to anything,
``load`` on arbitrary text): it either accepts the input or raises ``InputError``, never anything else.
Nothing here starts Ray or an MLflow server; report cases read a small sqlite store.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeper.cli import main
from sweeper.spec import loading
from trainables.errors import InputError

TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["sketch"],
}
BASE: dict[str, Any] = {
    "name": "bad-input",
    "method": "lipsum_ft",
    "data": TINY_DATA,
    "train": {"epochs": 1, "batch_size": 16, "lr": 1.0e-4},
    "fixed": {"M": 8},
    "search": {"L": {"grid": [2, 4]}},
    "seeds": [0],
}
TPE = {"searcher": "tpe", "num_samples": 2}
NO_USER = "no-such-user-sweeper"  # ~NO_USER/... cannot be expanded
ENV_AUTH_MODE = os.environ.get("RAY_AUTH_MODE")  # as the session started (see ray_imported)


# -- the context a case builds its input in ----------------------------------------------------


@dataclass
class Ctx:
    """Where a case writes its files (the working directory) and how it reaches shared fixtures."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    request: pytest.FixtureRequest

    def write(self, content: dict[str, Any] | str | bytes, name: str = "sweep.yaml") -> Path:
        path = self.tmp / "in" / name
        path.parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    def store(self) -> str:
        """The tracking URI of a small MLflow store that holds sweep ``tiny`` (module fixture)."""
        return self.request.getfixturevalue("store")


Maker = Callable[[Ctx], list[str]]


def free_port() -> int:
    """A local port nothing listens on (bound, read and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mapping(**changes: Any) -> Callable[[Ctx], dict[str, Any]]:
    """BASE with top-level keys replaced; a value None deletes the key, a callable gets the Ctx."""

    def make(ctx: Ctx) -> dict[str, Any]:
        content = copy.deepcopy(BASE)
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value(ctx) if callable(value) else value
        return content

    return make


def sweep(**changes: Any) -> Maker:
    """``sweeper validate`` of BASE with top-level keys replaced."""
    return lambda ctx: ["validate", str(ctx.write(mapping(**changes)(ctx)))]


def section(name: str, **changes: Any) -> Maker:
    """``sweeper validate`` of BASE with keys inside one section replaced (callables get the Ctx)."""

    def content(ctx: Ctx) -> dict[str, Any]:
        return {**BASE.get(name, {}), **{k: v(ctx) if callable(v) else v for k, v in changes.items()}}

    return sweep(**{name: content})


def data(**changes: Any) -> Maker:
    return section("data", **changes)


def text(content: str | bytes) -> Maker:
    """``sweeper validate`` of a file with exactly this content."""
    return lambda ctx: ["validate", str(ctx.write(content))]


def launch(*options: str, **changes: Any) -> Maker:
    """``sweeper launch`` of BASE (with changes); ``{port}`` in an option becomes a free port."""

    def make(ctx: Ctx) -> list[str]:
        port = str(free_port())
        return ["launch", str(ctx.write(mapping(**changes)(ctx))), *(o.replace("{port}", port) for o in options)]

    return make


def report(*options: str) -> Maker:
    """``sweeper report`` against the module's MLflow store."""
    return lambda ctx: ["report", *options, "--tracking-uri", ctx.store()]


def resume(name: str, state: Callable[[Ctx], dict[str, Any]] | None = None) -> Maker:
    """``sweeper resume NAME`` from a storage folder in which ``NAME/sweeper.json`` holds ``state``
    (when given). Resume imports Ray: first in its default auth mode (see ``ray_imported``)."""

    def make(ctx: Ctx) -> list[str]:
        ctx.request.getfixturevalue("ray_imported")
        storage = ctx.tmp / "in" / "sweeps"
        if state is not None:
            (storage / name).mkdir(parents=True)
            (storage / name / "sweeper.json").write_text(json.dumps(state(ctx)))
        return ["resume", name, "--storage", str(storage)]

    return make


def launched_with_other_seeds(ctx: Ctx) -> dict[str, Any]:
    """The resume state of BASE launched on seeds [0, 1], its file since edited back to BASE."""
    launched = {**BASE, "seeds": [0, 1]}
    return {
        "name": BASE["name"],
        "sweep_file": str(ctx.write(BASE)),
        "sweep_text": yaml.safe_dump(launched),
        "config_hash": loading.from_mapping(launched).config_hash(),
        "total_trials": 4,
        "tracking_uri": f"sqlite:///{ctx.tmp}/in/mlflow.db",
        "experiment_id": "1",
        "parent_run_id": "0" * 32,
    }


def confirm(*options: str) -> Maker:
    """``sweeper confirm`` against the module's MLflow store (it imports Ray, see ``ray_imported``)."""

    def make(ctx: Ctx) -> list[str]:
        ctx.request.getfixturevalue("ray_imported")
        return ["confirm", *options, "--tracking-uri", ctx.store()]

    return make


def imagefolder(ctx: Ctx, domains: tuple[str, ...] = ("photo", "sketch")) -> str:
    """A DomainNet-style folder with one (empty) class folder per domain."""
    root = ctx.tmp / "in" / "folders"
    for domain in domains:
        (root / domain / "cat").mkdir(parents=True, exist_ok=True)
    return str(root)


def jpeg_bytes() -> bytes:
    """A small valid JPEG (noise, so that its entropy-coded data is long enough to cut)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def corrupt_image(name: str, content: Callable[[], bytes]) -> Callable[[Ctx], dict[str, str]]:
    """``data.source``: an image folder whose ID domain's class holds a good JPEG and ``name`` with
    ``content``; small, so the check decodes every file the trials would read."""

    def make(ctx: Ctx) -> dict[str, str]:
        root = Path(imagefolder(ctx))
        (root / "photo" / "cat" / "good.jpg").write_bytes(jpeg_bytes())
        (root / "photo" / "cat" / name).write_bytes(content())
        return {"imagefolder": str(root)}

    return make


def split_file(ctx: Ctx, content: bytes) -> str:
    """An image folder whose ID domain has a DomainNet split file holding ``content``."""
    root = Path(imagefolder(ctx))
    (root / "photo_train.txt").write_bytes(content)
    return str(root)


def caption_file(content: bytes) -> Callable[[Ctx], dict[str, str]]:
    """DiVE's fixed params with ``reference`` pointing at a caption file holding ``content``."""
    return lambda ctx: {"reference": str(ctx.write(content, "captions.tsv"))}


def corrupt_checkpoint(ctx: Ctx) -> dict[str, str]:
    path = ctx.tmp / "in" / "weights.safetensors"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"\x93NOT A SAFETENSORS FILE" * 64)
    return {"arch": "tiny-clip-v1", "pretrained": str(path)}


def truncated_checkpoint(ctx: Ctx) -> dict[str, str]:
    """A header that promises 1 MB of JSON in a 40-byte file."""
    path = ctx.tmp / "in" / "short.safetensors"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((1 << 20).to_bytes(8, "little") + b'{"w": {"dtype": "F32"')
    return {"arch": "tiny-clip-v1", "pretrained": str(path)}


def on_cluster(maker: Maker) -> Maker:
    """A case that talks to a Ray cluster (and imports Ray): a token is set, so the checks get as far
    as the address, and Ray is imported first in its default auth mode (see ``ray_imported``)."""

    def make(ctx: Ctx) -> list[str]:
        ctx.request.getfixturevalue("ray_imported")
        ctx.monkeypatch.setenv("RAY_AUTH_MODE", "token")
        ctx.monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
        return maker(ctx)

    return make


def s3_unreachable(maker: Maker) -> Maker:
    """A case whose s3:// storage points, the AWS way, at an endpoint where nothing listens."""

    def make(ctx: Ctx) -> list[str]:
        ctx.monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        for key, value in (
            ("AWS_ACCESS_KEY_ID", "AKIAX"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            ctx.monkeypatch.setenv(key, value)
        return maker(ctx)

    return make


# -- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    make: Maker
    words: tuple[str, ...]  # each must appear in the error line
    where: str | None = None  # for `validate` cases: the field path in InputError.where, after the file


CASES: list[Bad] = [
    # YAML that does not parse, or is not a mapping
    Bad("yaml-bad-indentation", text("name: x\n  method: ft\n data: {}\n"), ("malformed YAML at line",)),
    Bad("yaml-unclosed-bracket", text("name: x\nmethod: ft\ndata: {id: photo, ood: [sketch\n"), ("malformed YAML",)),
    Bad(
        "yaml-tab-indentation", text("name: x\nmethod: ft\ndata:\n\tid: photo\n"), ("malformed YAML at line 4", "'\\t'")
    ),
    Bad("yaml-unclosed-quote", text('name: "x\nmethod: ft\n'), ("malformed YAML",)),
    Bad("yaml-duplicate-key", text("name: x\nmethod: ft\nname: y\n"), ("duplicate key 'name'",)),
    Bad(
        "yaml-python-object-tag",
        text("name: !!python/object/apply:os.system [echo hi]\nmethod: ft\n"),
        ("malformed YAML", "python/object"),
    ),
    Bad("not-utf8", text(b"name: \xff\xfe\n"), ("cannot read the sweep file",)),
    Bad("empty-file", text(""), ("empty",)),
    Bad("only-comments", text("# nothing here\n"), ("empty",)),
    Bad("top-level-list", text("- name: x\n- method: ft\n"), ("top level must be a mapping", "list")),
    Bad("top-level-scalar", text("just words\n"), ("top level must be a mapping", "str")),
    # unknown keys, at the top and in each section
    Bad("unknown-top-level-key", sweep(colour="red"), ("colour", "unknown key; allowed: name"), "colour"),
    Bad("unknown-train-key", section("train", nesterov=True), ("train.nesterov", "unknown key"), "train.nesterov"),
    Bad(
        "crop-scale-reversed",
        section("train", crop_scale=[1.0, 0.5]),
        ("train.crop_scale", "0 < low <= high"),
        "train.crop_scale",
    ),
    Bad(
        "unknown-optimizer",
        section("train", optimizer="lion"),
        ("train.optimizer", "'adamw' or 'sgd'"),
        "train.optimizer",
    ),
    Bad("unknown-data-key", data(domains=["photo"]), ("data.domains", "unknown key"), "data.domains"),
    Bad(
        "unknown-shapes-key",
        data(source={"shapes": {"size": 32}}),
        ("data.source.shapes.size", "unknown key"),
        "data.source.shapes.size",
    ),
    Bad(
        "unknown-objective-key",
        sweep(objective={"metric": "id/acc", "direction": "up"}),
        ("objective.direction", "unknown key"),
        "objective.direction",
    ),
    Bad(
        "unknown-resources-key",
        sweep(resources={"cpu": 1, "memory": "4G"}),
        ("resources.memory", "unknown key"),
        "resources.memory",
    ),
    Bad("unknown-tracking-key", sweep(tracking={"token": "x"}), ("tracking.token", "unknown key"), "tracking.token"),
    Bad("unknown-report-key", sweep(report={"title": "t"}), ("report.title", "unknown key"), "report.title"),
    Bad("missing-name", sweep(name=None), ("name", "required"), "name"),
    # wrong types and out-of-range values
    Bad("epochs-as-string", section("train", epochs="4"), ("train.epochs", "valid integer"), "train.epochs"),
    Bad("seeds-not-a-list", sweep(seeds=3), ("seeds", "valid list"), "seeds"),
    Bad("negative-lr", section("train", lr=-0.1), ("train.lr", "greater than 0"), "train.lr"),
    Bad("negative-seed", sweep(seeds=[0, -1]), ("seeds[1]", "greater than or equal to 0"), "seeds[1]"),
    Bad("name-with-spaces", sweep(name="two words"), ("name", "pattern"), "name"),
    Bad("negative-gpu", sweep(resources={"gpu": -1}), ("resources.gpu", "greater than or equal to 0"), "resources.gpu"),
    Bad("zero-cpu", sweep(resources={"cpu": 0}), ("resources.cpu", "greater than 0"), "resources.cpu"),
    Bad(
        "objective-mode",
        sweep(objective={"metric": "id/acc", "mode": "maximise"}),
        ("objective.mode", "'max' or 'min'"),
        "objective.mode",
    ),
    # method and search space
    Bad("unknown-method", sweep(method="lipsum"), ("method", "unknown method 'lipsum'"), "method"),
    Bad(
        "unknown-distribution",
        sweep(search={"L": {"normal": [4, 1]}}),
        ("search.L.normal", "unknown key"),
        "search.L.normal",
    ),
    Bad("dim-without-values", sweep(search={"L": {"log": False}}), ("search.L", "exactly one of grid"), "search.L"),
    Bad("empty-search-space", sweep(**TPE, search={}), ("search", "needs at least one search dim"), "search"),
    Bad("empty-grid", sweep(search={"L": {"grid": []}}), ("search.L.grid", "at least 1 item"), "search.L.grid"),
    Bad(
        "empty-choice",
        sweep(search={"loss": {"choice": []}}),
        ("search.loss.choice", "at least 1 item"),
        "search.loss.choice",
    ),
    Bad(
        "empty-method-choice",
        sweep(method={"choice": []}),
        ("search.method.choice", "at least 1 item"),
        "search.method.choice",
    ),
    Bad("grid-over-fixed-key", sweep(fixed={"M": 8, "L": 2}), ("search.L", "both fixed and searched"), "search.L"),
    Bad("unknown-method-parameter", sweep(fixed={"M": 8, "K": 3}), ("fixed.K", "unknown parameter 'K'"), "fixed.K"),
    Bad(
        "unknown-searched-parameter",
        sweep(search={"rank": {"grid": [2]}}),
        ("search.rank", "unknown parameter"),
        "search.rank",
    ),
    Bad(
        "lipsum-L-over-context",
        sweep(search={"L": {"grid": [2, 31]}}),
        ("search.L.grid[1]", "context length 32"),
        "search.L.grid[1]",
    ),
    Bad(
        "lipsum-L-over-context-range",
        sweep(**TPE, search={"L": {"int": [1, 64]}}),
        ("search.L.int[1]", "context length 32"),
        "search.L.int[1]",
    ),
    Bad(
        "dive-negative-lam",
        sweep(method="dive", fixed={"lam": -1.0}, search={}),
        ("fixed.lam", "greater than or equal to 0"),
        "fixed.lam",
    ),
    Bad(
        "dive-missing-reference",
        sweep(method="dive", fixed=lambda c: {"reference": str(c.tmp / "no.tsv")}, search={}),
        ("fixed.reference", "no.tsv"),
        "fixed.reference",
    ),
    Bad(
        "dive-reference-not-text",
        sweep(method="dive", fixed=caption_file(b"\xff\xfe\x00\x81"), search={}),
        ("fixed.reference", "cannot read caption file"),
        "fixed.reference",
    ),
    Bad(
        "dive-reference-no-header",
        sweep(method="dive", fixed=caption_file(b"a,b\n1,2\n"), search={}),
        ("fixed.reference", "header must name an image column"),
        "fixed.reference",
    ),
    Bad(
        "when-method-never-holds",
        sweep(
            method={"choice": ["ft", "lipsum_ft"]}, fixed={}, search={"L": {"grid": [2], "when": {"method": "lorsu"}}}
        ),
        ("search.L.when.method", "never holds"),
        "search.L.when.method",
    ),
    Bad(
        "upgrade-model-unknown-tag",
        sweep(method="coop", fixed={"upgrade_model": {"arch": "ViT-B-32", "pretrained": "x"}}, search={}),
        ("fixed.upgrade_model.pretrained", "no pretrained tag 'x'"),
        "fixed.upgrade_model.pretrained",
    ),
    Bad(
        "range-reversed",
        sweep(**TPE, search={"lam": {"float": [2.0, 1.0]}}),
        ("search.lam.float", "above the upper"),
        "search.lam.float",
    ),
    Bad(
        "range-under-grid-searcher",
        sweep(search={"lam": {"float": [0.1, 1.0]}}),
        ("search.lam", "searcher grid enumerates"),
        "search.lam",
    ),
    # data
    Bad("unknown-id-domain", data(id="photograph"), ("data.id", "unknown domain 'photograph'"), "data.id"),
    Bad(
        "unknown-ood-domain",
        data(ood=["sketch", "cartoon"]),
        ("data.ood[1]", "unknown domain 'cartoon'"),
        "data.ood[1]",
    ),
    Bad("id-also-in-ood", data(ood=["photo"]), ("data.ood[0]", "ID domain"), "data.ood[0]"),
    Bad("ood-listed-twice", data(ood=["sketch", "sketch"]), ("data.ood[1]", "listed twice"), "data.ood[1]"),
    Bad("unknown-data-source", data(source="cifar"), ("data.source", "unknown data source 'cifar'"), "data.source"),
    Bad(
        "shapes-options-not-a-mapping",
        data(source={"shapes": 5}),
        ("data.source.shapes", "must be a mapping"),
        "data.source.shapes",
    ),
    Bad(
        "per-class-not-a-mapping",
        data(source={"shapes": {"per_class": [16, 10]}}),
        ("data.source.shapes.per_class", "must be a mapping"),
        "data.source.shapes.per_class",
    ),
    Bad(
        "imagefolder-not-a-path",
        data(source={"imagefolder": 5}),
        ("data.source.imagefolder", "must be a path"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-unknown-user",
        data(source={"imagefolder": f"~{NO_USER}/data"}),
        ("data.source.imagefolder", "no such user"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-domains-not-a-list",
        data(source=lambda c: {"imagefolder": imagefolder(c), "domains": "photo"}),
        ("data.source.domains", "must be a list"),
        "data.source.domains",
    ),
    Bad(
        "missing-imagefolder",
        data(source=lambda c: {"imagefolder": str(c.tmp / "no-data")}),
        ("data.source.imagefolder", "does not exist"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-missing-domain",
        data(source=lambda c: {"imagefolder": imagefolder(c, ("photo",))}),
        ("data.ood[0]", "unknown domain 'sketch'"),
        "data.ood[0]",
    ),
    Bad(
        "imagefolder-unknown-layout",
        data(source=lambda c: {"imagefolder": imagefolder(c), "layout": "coco"}),
        ("data.source.layout", "unknown layout 'coco'"),
        "data.source.layout",
    ),
    Bad(
        "imagefolder-truncated-jpeg",
        data(source=corrupt_image("cut.jpg", lambda: jpeg_bytes()[:-400])),
        ("data.source.imagefolder", "photo/cat/cut.jpg' cannot be decoded", "truncated"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-zero-byte-png",
        data(source=corrupt_image("empty.png", lambda: b"")),
        ("data.source.imagefolder", "photo/cat/empty.png' cannot be decoded", "cannot identify image file"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-text-named-png",
        data(source=corrupt_image("notes.png", lambda: b"not an image, a note\n")),
        ("data.source.imagefolder", "photo/cat/notes.png' cannot be decoded", "cannot identify image file"),
        "data.source.imagefolder",
    ),
    Bad(
        "imagefolder-split-file-not-utf8",
        data(source=lambda c: {"imagefolder": split_file(c, b"photo/cat/a.jpg 0\n\xff\xfe\n")}),
        ("photo_train.txt", "cannot read this split file"),
    ),
    # model
    Bad("unknown-zoo-model", sweep(model="zoo/huge-clip"), ("model", "unknown zoo model 'huge-clip'"), "model"),
    Bad(
        "unknown-arch",
        sweep(model={"arch": "ViT-Q-99", "pretrained": "/x.pt"}),
        ("model.arch", "ViT-Q-99"),
        "model.arch",
    ),
    Bad(
        "missing-model-file",
        sweep(model=lambda c: {"arch": "tiny-clip-v1", "pretrained": str(c.tmp / "w.pt")}),
        ("model.pretrained", "does not exist"),
        "model.pretrained",
    ),
    Bad(
        "corrupt-checkpoint",
        sweep(model=corrupt_checkpoint),
        ("model.pretrained", "weights.safetensors"),
        "model.pretrained",
    ),
    Bad(
        "model-file-unknown-user",
        sweep(model={"arch": "tiny-clip-v1", "pretrained": f"~{NO_USER}/w.pt"}),
        ("model.pretrained", "no such user"),
        "model.pretrained",
    ),
    Bad(
        "model-cache-unknown-user",
        sweep(model={"arch": "ViT-B-32", "pretrained": "openai", "cache_dir": f"~{NO_USER}"}),
        ("model.cache_dir", "no such user"),
        "model.cache_dir",
    ),
    Bad(
        "truncated-checkpoint",
        sweep(model=truncated_checkpoint),
        ("model.pretrained", "short.safetensors"),
        "model.pretrained",
    ),
    # metrics
    Bad(
        "objective-unknown-metric",
        sweep(objective={"metric": "ood/mean_acc"}),
        ("objective.metric", "unknown metric"),
        "objective.metric",
    ),
    Bad(
        "objective-domain-not-evaluated",
        sweep(objective={"metric": "ood/painting/acc"}),
        ("objective.metric", "'painting'", "not in data.ood"),
        "objective.metric",
    ),
    Bad(
        "ctx-init-longer-than-n-ctx",
        sweep(method="contcoop", fixed={}, search={"n_ctx": {"grid": [2, 4]}}),
        ("search.n_ctx.grid[0]", "'a photo of a' is 4 tokens, but n_ctx is 2"),
        "search.n_ctx.grid[0]",
    ),
    Bad(
        "objective-on-test-data",
        sweep(objective={"metric": "ood/avg_acc"}),
        ("objective", "is a test metric", "oracle: true"),
        "objective",
    ),
    Bad(
        "objective-on-test-data-through-wise",
        sweep(objective={"metric": "wise/0.5/id/acc"}, posthoc={"wise": {"alphas": [0.0, 0.5, 1.0]}}),
        ("objective", "is a test metric"),
        "objective",
    ),
    Bad(
        "oodval-objective-without-ood-val",
        sweep(objective={"metric": "oodval/avg_acc"}),
        ("objective.metric", "needs at least one data.ood_val"),
        "objective.metric",
    ),
    Bad(
        "ood-val-is-a-test-domain", data(ood_val=["sketch"]), ("data.ood_val[0]", "also in data.ood"), "data.ood_val[0]"
    ),
    Bad(
        "ood-val-unknown-domain", data(ood_val=["quickdraw"]), ("data.ood_val[0]", "unknown domain"), "data.ood_val[0]"
    ),
    Bad(
        "asha-on-a-final-only-objective",
        sweep(scheduler="asha", objective={"metric": "wise/0.5/val/acc"}, posthoc={"wise": {"alphas": [0.0, 0.5]}}),
        ("scheduler", "asha needs the objective at every epoch", "after the last one"),
        "scheduler",
    ),
    # multi-objective sweeps and post-hoc WiSE (issue 19)
    Bad(
        "objective-list-missing-mode",
        sweep(objective=[{"metric": "val/acc", "mode": "max"}, {"metric": "val/nll"}]),
        ("objective[1].mode", "required"),
        "objective[1].mode",
    ),
    Bad(
        "objective-list-metric-the-method-never-logs",
        sweep(objective=[{"metric": "val/acc", "mode": "max"}, {"metric": "lp/val_acc", "mode": "max"}]),
        ("objective[1].metric", "never logs 'lp/val_acc'", "lp, lp_ft"),
        "objective[1].metric",
    ),
    Bad(
        "objective-list-test-metric-without-oracle",
        sweep(objective=[{"metric": "val/acc", "mode": "max"}, {"metric": "ood/avg_acc", "mode": "max"}]),
        ("objective[1]", "is a test metric", "oracle: true"),
        "objective[1]",
    ),
    Bad(
        "objective-list-twice-the-same-metric",
        sweep(objective=[{"metric": "val/acc", "mode": "max"}, {"metric": "val/acc", "mode": "min"}]),
        ("objective[1].metric", "listed twice"),
        "objective[1].metric",
    ),
    Bad(
        "asha-with-two-objectives",
        sweep(scheduler="asha", objective=[{"metric": "val/acc", "mode": "max"}, {"metric": "val/nll", "mode": "min"}]),
        ("scheduler", "objective lists 2", "fifo"),
        "scheduler",
    ),
    Bad(
        "effective-robustness-val-without-ood-val",
        sweep(objective={"metric": "robustness/effective_val"}),
        ("objective.metric", "data.ood_val is empty"),
        "objective.metric",
    ),
    Bad(
        "posthoc-wise-on-a-prompt-method",
        sweep(method="coop", fixed={}, search={"n_ctx": {"grid": [2, 4]}}, posthoc={"wise": {}}),
        ("posthoc.wise", "'coop'", "parameter space", "lipsum_ft"),
        "posthoc.wise",
    ),
    Bad(
        "posthoc-wise-alpha-outside-0-1",
        sweep(posthoc={"wise": {"alphas": [0.0, 0.5, 1.5]}}),
        ("posthoc.wise.alphas", "1.5", "outside [0, 1]"),
        "posthoc.wise.alphas",
    ),
    Bad(
        "posthoc-wise-unknown-domain",
        sweep(posthoc={"wise": {"domains": ["photo", "painting"]}}),
        ("posthoc.wise.domains[1]", "'painting'", "not a test domain"),
        "posthoc.wise.domains[1]",
    ),
    Bad(
        "posthoc-wise-objective-at-an-alpha-not-in-the-curve",
        sweep(objective={"metric": "wise/0.5/val/acc"}, posthoc={"wise": {"alphas": [0.0, 1.0]}}),
        ("objective.metric", "alpha 0.5 is not in posthoc.wise.alphas"),
        "objective.metric",
    ),
    # continual sessions
    Bad(
        "sessions-unknown-domain",
        sweep(sessions=[{"id": "photo"}, {"id": "woodcut"}]),
        ("sessions[1].id", "'woodcut'", "known domains"),
        "sessions[1].id",
    ),
    Bad(
        "sessions-one-entry",
        sweep(sessions=[{"id": "photo"}]),
        ("sessions", "at least 2"),
        "sessions",
    ),
    Bad(
        "sessions-more-than-classes",
        sweep(sessions={"split": "photo", "count": 11}),
        ("sessions.count", "11 sessions", "10"),
        "sessions.count",
    ),
    Bad(
        "sessions-unknown-key",
        sweep(sessions={"split": "photo", "count": 2, "shot": 5}),
        ("sessions.shot", "unknown key"),
        "sessions.shot",
    ),
    Bad(
        "sessions-with-asha",
        sweep(sessions={"split": "photo", "count": 2}, scheduler="asha"),
        ("scheduler", "asha", "sessions"),
        "scheduler",
    ),
    Bad(
        "sessions-with-posthoc-wise",
        sweep(sessions={"split": "photo", "count": 2}, posthoc={"wise": {}}),
        ("posthoc.wise", "sessions"),
        "posthoc.wise",
    ),
    Bad(
        "sessions-on-a-method-that-does-not-train",
        sweep(method="zeroshot", fixed={}, search={}, sessions={"split": "photo", "count": 2}),
        ("sessions", "'zeroshot'", "trains nothing"),
        "sessions",
    ),
    Bad(
        "continual-metric-without-sessions",
        sweep(report={"metrics": ["id/acc", "continual/forgetting"]}),
        ("report.metrics[1]", "continual", "sessions"),
        "report.metrics[1]",
    ),
    Bad(
        "report-section-unknown-metric",
        sweep(report={"metrics": ["id/acc", "id/f1"]}),
        ("report.metrics[1]", "unknown metric 'id/f1'"),
        "report.metrics[1]",
    ),
    # tracking
    Bad(
        "tracking-unreachable",
        sweep(tracking=lambda c: {"uri": f"http://127.0.0.1:{free_port()}"}),
        ("tracking.uri", "unreachable"),
        "tracking.uri",
    ),
    Bad(
        "tracking-file-store",
        sweep(tracking={"uri": "file:///tmp/mlruns"}),
        ("tracking.uri", "file store"),
        "tracking.uri",
    ),
    Bad("tracking-bare-path", sweep(tracking={"uri": "./mlruns"}), ("tracking.uri", "file store"), "tracking.uri"),
    Bad(
        "tracking-unknown-scheme",
        sweep(tracking={"uri": "mysql://db/mlflow"}),
        ("tracking.uri", "'mysql'"),
        "tracking.uri",
    ),
    Bad(
        "tracking-port-typo",
        sweep(tracking={"uri": "http://127.0.0.1:50O0"}),
        ("tracking.uri", "nonnumeric port"),
        "tracking.uri",
    ),
    Bad(
        "tracking-sqlite-unknown-user",
        sweep(tracking={"uri": f"sqlite:///~{NO_USER}/mlflow.db"}),
        ("tracking.uri",),
        "tracking.uri",
    ),
    Bad(
        "tracking-sqlite-no-folder",
        sweep(tracking=lambda c: {"uri": f"sqlite:///{c.tmp}/none/mlflow.db"}),
        ("tracking.uri", "does not exist"),
        "tracking.uri",
    ),
    # the sweep-file path itself
    Bad("validate-missing-file", lambda c: ["validate", str(c.tmp / "absent.yaml")], ("absent.yaml", "does not exist")),
    Bad("validate-a-directory", lambda c: ["validate", str(c.tmp)], ("is not a file",)),
    Bad("launch-missing-file", lambda c: ["launch", str(c.tmp / "absent.yaml")], ("absent.yaml", "does not exist")),
    # launch: checks of the command line, before Ray or MLflow start
    Bad("launch-bad-file", launch(search={"L": {"grid": [0, 2]}}), ("search.L.grid[0]", "greater than or equal to 1")),
    Bad(
        "launch-unreachable-tracking",
        launch(tracking=lambda c: {"uri": f"http://127.0.0.1:{free_port()}"}),
        ("tracking.uri", "unreachable"),
    ),
    Bad(
        "launch-working-dir-without-cluster",
        launch("--working-dir", "."),
        ("--working-dir", "only applies with --cluster"),
    ),
    Bad("launch-cluster-without-storage", launch("--cluster", "http://127.0.0.1:{port}"), ("--storage",)),
    Bad(
        "launch-cluster-relative-storage",
        launch("--cluster", "http://127.0.0.1:{port}", "--storage", "sweeps"),
        ("--storage", "relative"),
    ),
    Bad(
        "launch-cluster-s3-credentials",
        launch("--cluster", "http://127.0.0.1:{port}", "--storage", "s3://KEY:SECRET@sweeps/prefix"),
        ("--storage", "credentials in the storage URI"),
    ),
    Bad(
        "launch-cluster-default-tracking",
        launch("--cluster", "http://127.0.0.1:{port}", "--storage", "/shared/s"),
        ("tracking.uri", "--cluster"),
    ),
    Bad(
        "launch-cluster-unreachable",
        on_cluster(
            launch(
                "--cluster",
                "http://127.0.0.1:{port}",
                "--storage",
                "/shared/s",
                tracking=lambda c: {"uri": f"sqlite:///{c.tmp}/in/mlflow.db"},
            )
        ),
        ("--cluster", "no Ray dashboard answers"),
    ),
    Bad(
        "launch-address-unreachable",
        on_cluster(launch("--address", "127.0.0.1:{port}")),
        ("--address", "no Ray cluster answers"),
    ),
    Bad(
        "launch-address-is-a-url",
        on_cluster(launch("--address", "http://127.0.0.1:{port}")),
        ("--address", "not a Ray GCS address"),
    ),
    # report
    Bad("report-unknown-sweep", report("nope"), ("sweep", "no sweep named 'nope'", "tiny")),
    Bad(
        "report-no-store",
        lambda c: ["report", "tiny", "--tracking-uri", f"sqlite:///{c.tmp}/fresh.db"],
        ("--tracking-uri", "no MLflow store"),
    ),
    Bad(
        "report-file-store",
        lambda c: ["report", "tiny", "--tracking-uri", str(c.tmp)],
        ("--tracking-uri", "file store"),
    ),
    Bad("report-unknown-metric", report("tiny", "--metrics", "id/acc,id/f1"), ("--metrics", "id/f1")),
    Bad("report-unknown-row", report("tiny", "--rows", "Q"), ("--rows", "'Q'")),
    Bad("report-unknown-layout", report("tiny", "--layout", "grid"), ("--layout", "unknown layout 'grid'")),
    Bad(
        "report-sessions-not-continual",
        report("tiny", "--layout", "sessions"),
        ("--layout", "the sessions layout needs session/<k>/... metrics"),
    ),
    Bad("report-bad-delta", report("tiny", "--delta", "method"), ("--delta", "KEY=VALUE")),
    Bad("report-bad-precision", report("tiny", "--precision", "40"), ("--precision", "between 0 and 12")),
    Bad(
        "report-unreachable-server",
        lambda c: ["report", "tiny", "--tracking-uri", f"http://127.0.0.1:{free_port()}"],
        ("--tracking-uri", "unreachable"),
    ),
    Bad(
        "report-port-typo",
        lambda c: ["report", "tiny", "--tracking-uri", "http://127.0.0.1:50O0"],
        ("--tracking-uri", "nonnumeric port"),
    ),
    Bad("report-unknown-experiment", report("tiny", "--experiment", "nope"), ("--experiment", "no experiment named")),
    Bad("report-unknown-parent-run", report("tiny", "--parent-run", "0" * 32), ("--parent-run", "0" * 32)),
    # other commands
    Bad("status-unknown-sweep", lambda c: ["status", "nope", "--tracking-uri", c.store()], ("no sweep named 'nope'",)),
    Bad("resume-unknown-sweep", resume("nope"), ("NAME", "no resumable sweep 'nope'")),
    # s3:// storage whose endpoint does not answer: refused before any MLflow run (a missing
    # bucket needs a server: tests/unit/test_lease_s3.py)
    Bad(
        "launch-s3-unreachable",
        s3_unreachable(launch("--storage", "s3://sweeps/prefix")),
        ("--storage", "cannot reach the object store at http://127.0.0.1"),
    ),
    Bad(
        "resume-s3-unreachable",
        s3_unreachable(lambda c: ["resume", "bad-input", "--storage", "s3://KEY:SECRET@sweeps/prefix"]),
        ("--storage", "cannot reach the object store", "from s3://sweeps/prefix)"),
    ),
    Bad(
        "resume-changed-file",
        resume("bad-input", launched_with_other_seeds),
        ("sweep.yaml", "changed since the sweep was launched"),
    ),
    Bad("confirm-top-zero", confirm("tiny", "--top", "0"), ("--top", "at least 1")),
    # The parent run of ``tiny`` has no sweep.yaml artifact: one line, no MLflow download bar.
    Bad("confirm-no-sweep-file", confirm("tiny"), ("NAME", "no readable sweep.yaml artifact")),
    Bad(
        "status-unreachable-server",
        lambda c: ["status", "--tracking-uri", f"http://127.0.0.1:{free_port()}"],
        ("--tracking-uri", "unreachable"),
    ),
    Bad("methods-unknown-name", lambda c: ["methods", "lipsum"], ("NAME", "no method matches 'lipsum'", "lipsum_ft")),
    Bad("ui-public-host", lambda c: ["ui", "--host", "0.0.0.0"], ("--host", "--allow-remote")),
    Bad(
        "logs-unreachable-cluster",
        on_cluster(lambda c: ["logs", "job1", "--cluster", f"http://127.0.0.1:{free_port()}"]),
        ("--cluster", "no Ray dashboard answers"),
    ),
    Bad(
        "stop-unreachable-cluster",
        on_cluster(lambda c: ["stop", "job1", "--cluster", f"http://127.0.0.1:{free_port()}"]),
        ("--cluster", "no Ray dashboard answers"),
    ),
    Bad(
        "status-cluster-not-a-url",
        on_cluster(lambda c: ["status", "--cluster", "ftp://head"]),
        ("--cluster", "not the URL"),
    ),
]
BAD_INPUTS: list[str] = [case.id for case in CASES]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An MLflow sqlite store with sweep ``tiny``: a parent run and one finished trial (L=2)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("tiny", artifact_location=str(root / "artifacts"))
    parent = client.create_run(
        exp,
        run_name="tiny",
        tags={
            "sweeper.kind": "sweep",
            "sweeper.sweep": "tiny",
            "sweeper.search_keys": json.dumps(["L"]),
            "sweeper.report": json.dumps({"rows": ["L"], "metrics": ["id/acc"]}),
            "sweeper.objective": json.dumps({"metric": "id/acc", "mode": "max"}),
        },
    ).info.run_id
    client.set_terminated(parent, "FINISHED")
    child = client.create_run(
        exp,
        run_name="t0",
        tags={
            "mlflow.parentRunId": parent,
            "sweeper.kind": "trial",
            "sweeper.sweep": "tiny",
            "sweeper.trial_id": "t0",
            "sweeper.method": "lipsum_ft",
            "sweeper.seed": "0",
        },
    ).info.run_id
    client.log_batch(
        child,
        metrics=[Metric("id/acc", 0.5, 0, 0)],
        params=[Param("L", "2"), Param("method", "lipsum_ft"), Param("seed", "0")],
    )
    client.set_terminated(child, "FINISHED")
    return uri


@pytest.fixture(scope="module")
def ray_imported() -> None:
    """Ray reads RAY_AUTH_MODE once, when it is imported. The cluster cases set it to token before
    they import Ray; imported then, the session's embedded Ray (tests/e2e) would start in token mode
    too. So Ray is imported here first, in the mode the environment gave before any test ran."""
    if "ray" in sys.modules:
        return
    with pytest.MonkeyPatch.context() as patch:
        if ENV_AUTH_MODE is None:
            patch.delenv("RAY_AUTH_MODE", raising=False)
        else:
            patch.setenv("RAY_AUTH_MODE", ENV_AUTH_MODE)
        import ray  # noqa: F401


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in tmp_path (launch would create ./mlflow.db and ./sweeps there), with no proxy in the way
    and Ray's environment restored afterwards."""
    monkeypatch.chdir(tmp_path)
    # --cluster / --address set RAY_AUTH_MODE=token in os.environ: restore it after each test
    monkeypatch.setenv("RAY_AUTH_MODE", os.environ.get("RAY_AUTH_MODE", "token"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_the_suite_has_at_least_40_distinct_bad_inputs() -> None:
    assert len(BAD_INPUTS) >= 40
    assert len(set(BAD_INPUTS)) == len(BAD_INPUTS)


@pytest.mark.parametrize("case", CASES, ids=BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_naming_the_problem(
    case: Bad,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = case.make(Ctx(tmp_path, monkeypatch, request))
    capsys.readouterr()  # what building the input printed (MLflow creating the store) is not the command's
    before = {p.name for p in tmp_path.iterdir()}
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweeper: error: "), err
    for words in case.words:
        assert words in lines[0], lines[0]
    # nothing was started: no store, no sweeps/ folder, no other file in the working directory
    assert {p.name for p in tmp_path.iterdir()} == before
    if case.where is not None:  # the loader raises the same error, naming the file and the field
        with pytest.raises(InputError) as error:
            loading.load(argv[1])
        assert error.value.where == f"{argv[1]}: {case.where}"


def test_the_base_sweep_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cases are BASE with one thing broken: BASE itself must pass."""
    path = Ctx(tmp_path, monkeypatch, request).write(BASE)
    assert main(["validate", str(path)]) == 0
    assert "valid (method lipsum_ft, searcher grid, 2 trials)" in capsys.readouterr().out


def test_a_real_checkpoint_passes_the_header_check() -> None:
    """The corrupt-checkpoint cases fail on the file's content: the zoo's own weights pass."""
    from trainables.models import zoo

    weights = str(zoo.weights_path("tiny-clip-v1"))
    spec = loading.from_mapping({**BASE, "model": {"arch": "tiny-clip-v1", "pretrained": weights}})
    assert spec.context_length == 32


# -- fuzzing the loader ----------------------------------------------------------------------------
# Values are drawn from a pool that knows the loader's weak spots (paths, ~user, URIs, names the
# checks look up) as well as arbitrary scalars, lists and mappings (keys of any type).

WORDS = [
    "",
    "photo",
    "sketch",
    "shapes",
    "ft",
    "lipsum_ft",
    "dive",
    "coop",
    "grid",
    "tpe",
    "asha",
    "max",
    "mse",
    "id/acc",
    "ood/sketch/acc",
    "zoo/tiny-clip-v1",
    "tiny-clip-v1",
    "openai",
    "L",
    "M",
    "method",
    "x.pt",
    "w.safetensors",
    f"~{NO_USER}/x",
    "/",
    "/bin/sh",
    "a\x00b",
    "http://127.0.0.1:50O0",
    "sqlite:///x.db",
    f"sqlite:///~{NO_USER}/x.db",
    "file:///tmp/mlruns",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 70)
    | st.integers()
    | st.floats()
    | st.sampled_from(WORDS)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6) | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = [
    ("name",),
    ("method",),
    ("model",),
    ("model", "arch"),
    ("model", "pretrained"),
    ("model", "cache_dir"),
    ("data", "source"),
    ("data", "source", "shapes"),
    ("data", "source", "shapes", "per_class"),
    ("data", "source", "imagefolder"),
    ("data", "source", "layout"),
    ("data", "source", "domains"),
    ("data", "id"),
    ("data", "ood"),
    ("train",),
    ("train", "lr"),
    ("fixed",),
    ("fixed", "L"),
    ("fixed", "reference"),
    ("fixed", "upgrade_model"),
    ("search",),
    ("search", "L"),
    ("search", "L", "grid"),
    ("search", "L", "when"),
    ("search", "tau", "float"),
    ("seeds",),
    ("searcher",),
    ("num_samples",),
    ("scheduler",),
    ("scheduler", "asha"),
    ("objective",),
    ("objective", "metric"),
    ("resources",),
    ("max_concurrent",),
    ("tracking",),
    ("tracking", "uri"),
    ("report",),
    ("report", "rows"),
]
METHODS = ["lipsum_ft", "dive", "coop", "contcoop", "lora", "lorsu", "lp_ft", "wise_ft", "car_ft", "ft"]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def loads_or_input_error(load: Callable[[], Any]) -> None:
    try:
        load()
    except InputError as error:
        assert error.where and str(error)


@FUZZ
@given(content=values)
def test_fuzz_any_structure_loads_or_raises_input_error(content: Any) -> None:
    """Anything as the parsed file, and the same written as YAML and loaded from disk."""
    loads_or_input_error(lambda: loading.from_mapping(content))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.yaml"
        path.write_text(yaml.safe_dump(content), encoding="utf-8")
        loads_or_input_error(lambda: loading.load(path))


@FUZZ
@given(
    method=st.sampled_from(METHODS), edits=st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=3)
)
def test_fuzz_broken_fields_load_or_raise_input_error(method: str, edits: list[tuple[tuple[str, ...], Any]]) -> None:
    """BASE (for one method) with up to three fields set to anything."""
    content = {**copy.deepcopy(BASE), "method": method}
    if method != "lipsum_ft":
        content.update(fixed={}, search={})
    for path, value in edits:
        node = content
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    loads_or_input_error(lambda: loading.from_mapping(content))


yaml_text = st.text(max_size=80) | st.lists(
    st.sampled_from(
        [
            "name: x",
            "method: ft",
            "data: {id: photo, ood: [sketch]}",
            "  - a",
            "[",
            "]",
            "{",
            "}",
            ":",
            "!!python/object:os.system",
            "&a",
            "*a",
            "? ",
            "\t",
            "'",
            '"',
            "--- ",
            "...",
            "%YAML 1.1",
            "seeds: [0, 0]",
            "<<: *a",
            "!!binary x",
            "? [a]: 1",
            "1e5",
            "0x1F",
            "~",
        ]
    ),
    max_size=8,
).map("\n".join)


@FUZZ
@given(content=yaml_text)
def test_fuzz_any_text_file_loads_or_raises_input_error(content: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.yaml"
        path.write_text(content, encoding="utf-8")
        loads_or_input_error(lambda: loading.load(path))
