"""Load a CLIP model from the zoo, from an open_clip hub tag in the local cache, or from a file.

Model specs, as written in a sweep file's ``model:`` field:

- ``"zoo/tiny-clip-v1"``: a model shipped with Sweeper;
- ``{arch: ViT-B-16, pretrained: openai}``: open_clip weights, read from the local cache only
  (trials never download: a hundred workers racing to a hub is how clusters get rate-limited);
- ``{arch: ViT-B-16, pretrained: /path/to/ckpt.safetensors | .pt}``: a local checkpoint, read
  with safetensors or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.data.base import user_path
from trainables.errors import InputError
from trainables.models import zoo

# open_clip (and with it torch) is imported where a model is built: the checks of a sweep file
# import this module, and `sweeper validate` should not wait seconds for either.
if TYPE_CHECKING:
    import open_clip
    import torch

ZOO_PREFIX = "zoo/"
# OpenAI CLIP's pixel normalisation, which open_clip's pretrained configs default to.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipBundle:
    """A loaded model with what is needed to feed it."""

    model: open_clip.CLIP
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    name: str  # human-readable origin, e.g. "zoo/tiny-clip-v1" or "ViT-B-16@openai"
    fingerprint: str  # identifies the weights, for cache keys
    image_size: int
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD

    @property
    def context_length(self) -> int:
        return int(self.model.context_length)


def hub_cache_dir(cache_dir: str | None = None, field: str = "model.cache_dir") -> Path:
    """Where hub weights are looked for: the argument, else $HF_HUB_CACHE, else the HF default."""
    if cache_dir:
        return user_path(cache_dir, field)
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return Path(hf_home).expanduser() / "hub"


def _check_arch(arch: str, field: str) -> None:
    import open_clip

    zoo.register_configs()
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if arch.lower()[:5] in m.lower()][:8]
        hint = f" Similar: {', '.join(close)}." if close else ""
        raise InputError(field, f"unknown architecture {arch!r}.{hint} See open_clip.list_models().")


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _load_file(model: torch.nn.Module, path: Path, field: str) -> None:
    import open_clip

    if not path.is_file():
        raise InputError(field, f"checkpoint file {str(path)!r} does not exist")
    try:
        open_clip.load_checkpoint(model, str(path), strict=True)
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's fault
        text = str(exc)
        if "Error(s) in loading state_dict" in text:
            details = [line.strip() for line in text.splitlines()[1:] if line.strip()]
            raise InputError(
                field,
                f"checkpoint {str(path)!r} does not match the architecture: {len(details)} problems, "
                f"first: {'; '.join(details[:2])}",
            ) from None
        raise InputError(field, f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {text[:300]}") from None


def check_weights_file(path: Path, field: str) -> None:
    """Fail early on a checkpoint that cannot be read: it must exist, and a ``.safetensors`` file
    must have a readable header (only the header is read, no weights)."""
    if not path.is_file():
        raise InputError(field, f"checkpoint file {str(path)!r} does not exist")
    if path.suffix != ".safetensors":
        return  # torch.load files are only read when the trial loads them
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except (SafetensorError, OSError) as exc:
        raise InputError(field, f"cannot read checkpoint {str(path)!r}: not a valid safetensors file ({exc})") from None


def resolve_hub_weights(arch: str, tag: str, cache_dir: str | None, field: str) -> Path:
    """The cached weight file for an open_clip (arch, tag), found without touching the network."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise InputError(field, f"{arch} has no pretrained tag {tag!r}; known tags: {', '.join(tags) or 'none'}")
    cache_field = field.rpartition(".")[0] + ".cache_dir" if "." in field else "cache_dir"
    hub = hub_cache_dir(cache_dir, cache_field)
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        stem = filename.rsplit(".", 1)[0]
        candidates = [
            "open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin" else f"{stem}.safetensors",
            filename,
        ]
        for candidate in candidates:
            found = try_to_load_from_cache(repo, candidate, cache_dir=str(hub))
            if isinstance(found, str):
                return Path(found)
        where = f"{hub}/models--{repo.replace('/', '--')}"
    else:
        url_cache = user_path(cache_dir, cache_field) if cache_dir else Path("~/.cache/clip").expanduser()
        path = url_cache / os.path.basename(cfg["url"])
        if path.is_file():
            return path
        where = str(path)
    raise InputError(
        field,
        f"weights for {arch} pretrained={tag!r} are not in the local cache (looked in {where}). "
        f"Sweeper never downloads inside trials. Fill the cache on a machine with internet access: "
        f"python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{tag}')\" "
        f"and copy {hub} (or set HF_HUB_CACHE / model.cache_dir to where it is), "
        f"or give a local checkpoint file as model.pretrained.",
    )


def load_clip(spec: str | Mapping[str, Any], device: str | torch.device = "cpu", field: str = "model") -> ClipBundle:
    """Build the model described by ``spec`` (see the module docstring) on ``device``, in eval mode."""
    import open_clip

    zoo.register_configs()
    if isinstance(spec, str):
        if not spec.startswith(ZOO_PREFIX):
            raise InputError(field, f"{spec!r} is not a zoo model; write zoo/<name> or {{arch: ..., pretrained: ...}}")
        name = spec[len(ZOO_PREFIX) :]
        if name not in zoo.names():
            raise InputError(field, f"unknown zoo model {name!r}; shipped: {', '.join(zoo.names())}")
        arch, weights, origin = name, zoo.weights_path(name), spec
        pretrained_cfg: dict = {}
    else:
        unknown = set(spec) - {"arch", "pretrained", "cache_dir"}
        if unknown:
            raise InputError(f"{field}.{sorted(unknown)[0]}", "unknown key; allowed: arch, pretrained, cache_dir")
        if "arch" not in spec or "pretrained" not in spec:
            raise InputError(field, "needs both 'arch' and 'pretrained'")
        arch, pretrained = str(spec["arch"]), str(spec["pretrained"])
        _check_arch(arch, f"{field}.arch")
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_path:
            weights, pretrained_cfg = Path(pretrained).expanduser(), {}
        else:
            weights = resolve_hub_weights(arch, pretrained, spec.get("cache_dir"), f"{field}.pretrained")
            pretrained_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
        origin = f"{arch}@{pretrained}"
    # open_clip warns "No pretrained weights loaded ... initialized randomly" for pretrained=None,
    # which misleads: the weights are loaded from the checkpoint file on the next line.
    already_disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        model = open_clip.create_model(
            arch, pretrained=None, force_quick_gelu=bool(pretrained_cfg.get("quick_gelu", False))
        )
    finally:
        logging.disable(already_disabled)
    _load_file(model, weights, f"{field}.pretrained" if not isinstance(spec, str) else field)
    model = model.to(device).eval()
    return ClipBundle(
        model=model,
        tokenizer=open_clip.get_tokenizer(arch),
        name=origin,
        fingerprint=_file_fingerprint(weights),
        image_size=int(model.visual.image_size[0]),
        mean=tuple(pretrained_cfg.get("mean", OPENAI_MEAN)),
        std=tuple(pretrained_cfg.get("std", OPENAI_STD)),
    )
