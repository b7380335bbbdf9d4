"""Model loading: zoo names, local checkpoint files, hub tags in the local cache, and clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from trainables.errors import InputError
from trainables.models import zoo
from trainables.models.loading import load_clip, resolve_hub_weights
from trainables.models.prompting import encode_text_from_embeddings, token_embeddings


@pytest.fixture(scope="module")
def random_v1() -> torch.nn.Module:
    zoo.register_configs()
    torch.manual_seed(0)
    return open_clip.create_model("tiny-clip-v1", pretrained=None)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_random_init_checkpoint_loads_from_torch_and_safetensors_files(random_v1, tmp_path: Path) -> None:
    pt = tmp_path / "random.pt"
    torch.save({"state_dict": random_v1.state_dict()}, pt)
    st = tmp_path / "random.safetensors"
    save_file({k: v.contiguous() for k, v in random_v1.state_dict().items()}, st)
    for path in (pt, st):
        bundle = load_clip({"arch": "tiny-clip-v1", "pretrained": str(path)})
        assert _same_weights(bundle.model, random_v1)
        assert bundle.image_size == 32 and bundle.context_length == 32
        assert not bundle.model.training


def test_zoo_name_loads_the_shipped_weights(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        bundle = load_clip("zoo/tiny-clip-v1")
    # open_clip's "initialized randomly" would be false: the checkpoint is loaded right after.
    assert not [r for r in caplog.records if "randomly" in r.getMessage()]
    assert logging.root.manager.disable == logging.NOTSET
    assert bundle.name == "zoo/tiny-clip-v1"
    tokens = bundle.tokenizer(["a photo of a star."])
    assert tokens.shape == (1, 32) and tokens[0, 0] == 49406


def test_unknown_zoo_model_and_bare_string_are_rejected() -> None:
    with pytest.raises(InputError, match="unknown zoo model 'tiny-clip-v9'"):
        load_clip("zoo/tiny-clip-v9")
    with pytest.raises(InputError, match="not a zoo model"):
        load_clip("ViT-B-16")


def test_unknown_architecture_is_named() -> None:
    with pytest.raises(InputError, match="unknown architecture 'ViT-Q-99'") as info:
        load_clip({"arch": "ViT-Q-99", "pretrained": "openai"})
    assert info.value.where == "model.arch"


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(InputError, match="cannot read checkpoint") as info:
        load_clip({"arch": "tiny-clip-v1", "pretrained": str(bad)})
    assert str(bad) in str(info.value)
    bad_st = tmp_path / "corrupt.safetensors"
    bad_st.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_clip({"arch": "tiny-clip-v1", "pretrained": str(bad_st)})


def test_checkpoint_of_another_architecture_is_rejected(random_v1, tmp_path: Path) -> None:
    path = tmp_path / "v1.pt"
    torch.save(random_v1.state_dict(), path)
    # A narrower sibling of the zoo's architecture (v1 and v2 share one).
    config = json.loads(zoo.config_path("tiny-clip-v1").read_text())
    config["vision_cfg"]["width"] = 64
    other = tmp_path / "tiny-clip-narrow.json"
    other.write_text(json.dumps(config))
    open_clip.add_model_config(other)
    with pytest.raises(InputError, match="does not match the architecture"):
        load_clip({"arch": "tiny-clip-narrow", "pretrained": str(path)})


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_clip({"arch": "tiny-clip-v1", "pretrained": str(tmp_path / "nope.pt")})


def test_hub_tag_missing_from_cache_names_the_cache_and_how_to_fill_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not in the local cache") as info:
        load_clip({"arch": "ViT-B-16", "pretrained": "openai", "cache_dir": str(tmp_path)})
    message = str(info.value)
    assert str(tmp_path) in message and "open_clip.create_model('ViT-B-16', pretrained='openai')" in message


def test_unknown_hub_tag_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="no pretrained tag 'nope'") as info:
        load_clip({"arch": "ViT-B-16", "pretrained": "nope"})
    assert "openai" in str(info.value)


def test_hub_weights_are_found_in_a_huggingface_cache_layout(tmp_path: Path) -> None:
    repo = open_clip.get_pretrained_cfg("ViT-B-16", "openai")["hf_hub"].rstrip("/")
    folder = tmp_path / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    snapshot = folder / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    found = resolve_hub_weights("ViT-B-16", "openai", str(tmp_path), "model.pretrained")
    assert found == snapshot / "open_clip_model.safetensors"


def test_unknown_model_key_is_named() -> None:
    with pytest.raises(InputError) as info:
        load_clip({"arch": "tiny-clip-v1", "pretrained": "x.pt", "precision": "fp16"})
    assert info.value.where == "model.precision"


def test_text_from_token_embeddings_equals_encode_text(random_v1) -> None:
    tokenizer = open_clip.get_tokenizer("tiny-clip-v1")
    tokens = tokenizer(["a red star.", "a sketch of a large ring in the top left."])
    with torch.no_grad():
        direct = torch.nn.functional.normalize(random_v1.encode_text(tokens), dim=-1)
        via = encode_text_from_embeddings(random_v1, token_embeddings(random_v1, tokens), tokens)
    torch.testing.assert_close(direct, via, atol=1e-5, rtol=1e-5)
