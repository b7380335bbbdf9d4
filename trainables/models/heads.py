"""Zero-shot classification heads built from an ensemble of prompt templates."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


class ClipEncoders(Protocol):
    """What these functions use of a model: open_clip's ``CLIP`` (which ships no type information,
    so it is Any to the type checker) or any module with its two encoders."""

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...


@torch.no_grad()
def zero_shot_head(
    model: ClipEncoders,
    tokenizer: Tokenizer,
    classnames: Sequence[str],
    templates: Sequence[str],
) -> torch.Tensor:
    """Class weights W [D, K]: w_c = normalize(mean_j normalize(G(template_j(c)))), as in CLIP.

    Class names are used as given (DomainNet's ``aircraft_carrier`` keeps its underscore, as the
    Lipsum-FT reference does).
    """
    device = next(model.parameters()).device
    tokens = class_prompt_tokens(tokenizer, classnames, templates).to(device)
    return head_from_tokens(model, tokens, len(classnames))


def class_prompt_tokens(tokenizer: Tokenizer, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Token ids [K * J, L] of every template filled with every class name, class-major."""
    return tokenizer([t.format(c) for c in classnames for t in templates])


def head_from_tokens(model: ClipEncoders, tokens: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``zero_shot_head`` from ``class_prompt_tokens``, differentiable (a text tower in training)."""
    text = F.normalize(model.encode_text(tokens), dim=-1)
    text = text.view(num_classes, tokens.shape[0] // num_classes, -1).mean(dim=1)
    return F.normalize(text, dim=-1).T.contiguous()


@torch.no_grad()
def context_head(
    model: ClipEncoders,
    tokenizer: Tokenizer,
    classnames: Sequence[str],
    templates: Sequence[str],
) -> torch.Tensor:
    """Per-template "context" weights [D, J]: each template averaged over classes (CAR-FT)."""
    device = next(model.parameters()).device
    prompts = [t.format(c) for c in classnames for t in templates]
    text = F.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)
    text = text.view(len(classnames), len(templates), -1).mean(dim=0)
    return F.normalize(text, dim=-1).T.contiguous()


@torch.no_grad()
def encode_images(
    model: ClipEncoders,
    images: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 512,
) -> torch.Tensor:
    """L2-normalised image features of a uint8 image tensor, in batches."""
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(images), batch_size):
        x = transform(images[start : start + batch_size]).to(device)
        chunks.append(F.normalize(model.encode_image(x), dim=-1).float().cpu())
    return torch.cat(chunks)


def accuracy(features: torch.Tensor, head: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of cosine-similarity classification."""
    return (features @ head).argmax(dim=1).eq(labels).float().mean().item()
