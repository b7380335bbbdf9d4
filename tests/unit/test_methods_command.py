"""`sweeper methods` documents every registered method: parameters, defaults, ranges, paper."""

from __future__ import annotations

import json

import pytest

from sweeper.cli import main
from trainables import registry


def test_methods_json_lists_every_method_with_its_parameters(capsys: pytest.CaptureFixture) -> None:
    assert main(["methods", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == set(registry.names())
    lipsum = data["lipsum_ft"]
    assert lipsum["paper"] and lipsum["trains"] is True
    assert lipsum["parameters"]["L"] == {"type": "int", "default": 8, "ge": 1,
                                         "description": lipsum["parameters"]["L"]["description"]}
    assert lipsum["parameters"]["loss"]["choices"] == ["mse", "kld"]
    assert data["zeroshot"]["trains"] is False and set(data["zeroshot"]["parameters"]) == {"templates", "template"}


def test_methods_table_and_pattern(capsys: pytest.CaptureFixture) -> None:
    assert main(["methods", "lor*"]) == 0
    out = capsys.readouterr().out
    assert "lorsu" in out and "lora" in out and "lipsum_ft" not in out
    assert "sparsity" in out and "Panos" in out
