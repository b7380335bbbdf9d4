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
    assert lipsum["parameters"]["L"] == {
        "type": "int",
        "default": 8,
        "ge": 1,
        "description": lipsum["parameters"]["L"]["description"],
    }
    assert lipsum["parameters"]["loss"]["choices"] == ["mse", "kld"]
    assert data["zeroshot"]["trains"] is False and set(data["zeroshot"]["parameters"]) == {"templates", "template"}


def test_methods_table_and_pattern(capsys: pytest.CaptureFixture) -> None:
    assert main(["methods", "lor*"]) == 0
    out = capsys.readouterr().out
    assert "lorsu" in out and "lora" in out and "lipsum_ft" not in out
    assert "sparsity" in out and "Panos" in out


def test_methods_shows_the_train_recipe_of_each_model_family(capsys: pytest.CaptureFixture) -> None:
    assert main(["methods", "kgcoop", "--json"]) == 0
    recipes = json.loads(capsys.readouterr().out)["kgcoop"]["recipes"]
    assert set(recipes) == {"tiny", "clip"}
    assert recipes["clip"]["optimizer"] == "sgd" and recipes["clip"]["epochs"] == 100
    assert recipes["tiny"]["optimizer"] == "sgd" and recipes["tiny"]["lr"] == 2e-3
    assert main(["methods", "lipsum_ft"]) == 0
    out = capsys.readouterr().out
    assert "train recipe by model family" in out and "clip (open_clip)" in out and "1e-05" in out
    assert main(["methods", "zeroshot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["zeroshot"]["recipes"] == {}  # it does not train
