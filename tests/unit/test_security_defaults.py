"""Security defaults, checked on the code itself: loopback binds, safe YAML, safe checkpoint
loading, no shell, and Ray token auth never turned off by Sweeper."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from sweeper.cli import build_parser
from sweeper.run import driving
from sweeper.spec import loading
from trainables.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p for folder in ("sweeper", "trainables", "dashboards", "bench", "tests") for p in (ROOT / folder).rglob("*.py")
)
DEPLOYMENT = [*(ROOT / "docker").iterdir(), ROOT / "Makefile", ROOT / ".ci" / "run"]


def calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of a function or method called ``name`` in the project's Python files."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    found.append((path, node))
    return found


def keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_the_mlflow_ui_binds_loopback_unless_told_otherwise() -> None:
    args = build_parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"


def test_embedded_ray_starts_no_dashboard() -> None:
    # The embedded instance serves nothing; on a cluster the dashboard is Ray's, behind token auth.
    source = inspect.getsource(driving.ensure_ray)
    assert 'address="local"' in source and "include_dashboard=False" in source


def test_yaml_python_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    payload = tmp_path / "evil.yaml"
    payload.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nmethod: ft\n")
    with pytest.raises(InputError) as info:
        loading.load(payload)
    assert "evil.yaml" in str(info.value)
    assert not marker.exists()


def test_checkpoints_load_only_through_safetensors_or_weights_only() -> None:
    loads = calls("load")
    torch_loads = [
        (p, c) for p, c in loads if isinstance(c.func, ast.Attribute) and getattr(c.func.value, "id", "") == "torch"
    ]
    assert torch_loads, "expected torch.load calls (trial resume, checkpoint files)"
    for path, call in torch_loads:
        assert keyword(call, "weights_only") is True, (
            f"{path.relative_to(ROOT)}:{call.lineno} torch.load without weights_only=True"
        )
    pickles = [
        (p, c) for p, c in loads if isinstance(c.func, ast.Attribute) and getattr(c.func.value, "id", "") == "pickle"
    ]
    assert not pickles, [f"{p.relative_to(ROOT)}:{c.lineno}" for p, c in pickles]


def test_no_subprocess_runs_through_a_shell() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for name in ("run", "Popen", "call", "check_call", "check_output")
        for path, node in calls(name)
        if keyword(node, "shell") is True
    ]
    assert not offenders
    assert not calls("system") or all(
        not isinstance(c.func, ast.Attribute) or getattr(c.func.value, "id", "") != "os" for _, c in calls("system")
    )


def test_sweeper_never_turns_ray_token_auth_off() -> None:
    shipped = [p for p in SOURCES if "tests" not in p.relative_to(ROOT).parts]  # tests quote the bad lines
    for path in [*shipped, *DEPLOYMENT]:
        if path.is_file():
            text = path.read_text(errors="replace")
            for line in text.splitlines():
                if "RAY_AUTH_MODE" in line:
                    assert "disabled" not in line.lower(), f"{path.relative_to(ROOT)}: {line.strip()}"


def test_error_messages_never_show_a_uri_password() -> None:
    from sweeper.tracking.uri import check_tracking_uri, redact_uri

    assert (
        redact_uri("postgresql+psycopg2://mlflow:s3cret@db:5432/mlflow")
        == "postgresql+psycopg2://mlflow:***@db:5432/mlflow"
    )
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(InputError) as info:
        check_tracking_uri("http://user:s3cret@127.0.0.1:9")
    assert "s3cret" not in str(info.value) and "user:***@127.0.0.1:9" in str(info.value)
