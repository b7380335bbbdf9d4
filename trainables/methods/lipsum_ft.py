"""Lipsum-FT (Nam, Heo and Lee, ICLR 2024): FT plus a random-text energy-gap regulariser.

Per step, M random texts ``[SOT] + L uniform token ids below 49406 + [EOT]`` go through the
frozen text tower. For each image, the energies ``v = s * <F(x), G(t_m)>`` of the fine-tuned and
of the frozen zero-shot image tower are compared on the same augmented view, where s is the
pretrained model's own logit scale exp(logit_scale), fixed: the released code multiplies by
CLIP's s, which is 100 on real CLIP; on tiny-clip-v1 it is ~21.5, where the same feature drift
gives an MSE term (100 / 21.5)^2 ~ 22 times smaller than at s = 100.

- ``mse`` (the released code): R = mean_i sum_m (v_theta - v_theta0)^2 / (2M);
- ``kld`` (reconstruction [R]): R = tau^2 * KL(softmax(v_theta0 / tau) || softmax(v_theta / tau)).

The loss is CE + lam * R. Defaults follow the reference: L = 8, M = 80, lam = 1.

``text_bank = N > 0`` is a cheaper variant, not the paper's: N random texts are encoded once
before training (a checkpointed buffer) and each step draws M of them without replacement, so
the text tower runs once per trial instead of once per step. The default 0 keeps fresh texts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.methods._anchored import AnchoredClassifier
from trainables.methods.base import Batches, TrialContext
from trainables.methods.params.lipsum_ft import LipsumParams
from trainables.registry import register

SOT, EOT = 49406, 49407


def random_texts(count: int, length: int, context_length: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` token sequences SOT + ``length`` ids uniform in [0, 49406) + EOT, zero-padded."""
    tokens = torch.zeros((count, context_length), dtype=torch.long)
    tokens[:, 0] = SOT
    tokens[:, 1 : length + 1] = torch.randint(0, SOT, (count, length), generator=generator)
    tokens[:, length + 1] = EOT
    return tokens


def energy_gap(v: torch.Tensor, v0: torch.Tensor, loss: str, tau: float = 1.0) -> torch.Tensor:
    """Regulariser between energies ``v`` (fine-tuned) and ``v0`` (zero-shot), both [B, M]."""
    if loss == "mse":
        return ((v - v0) ** 2).sum(dim=1).div(2 * v.shape[1]).mean()
    target = F.log_softmax(v0 / tau, dim=1)
    current = F.log_softmax(v / tau, dim=1)
    return tau**2 * F.kl_div(current, target, log_target=True, reduction="batchmean")


@register("lipsum_ft")
class LipsumFT(AnchoredClassifier):
    """FT whose image tower is kept close to zero-shot in energy on random texts."""

    Params = LipsumParams
    params: LipsumParams
    checkpoint_buffers = ("bank",)
    bank: torch.Tensor  # buffer, registered in __init__: the random-text features of text_bank

    def __init__(self, context: TrialContext, params: LipsumParams) -> None:
        super().__init__(context, params)
        self.register_buffer("bank", torch.zeros(params.text_bank, self.head.shape[0], device=context.device))

    @torch.no_grad()
    def encode_random_texts(self, count: int) -> torch.Tensor:
        """L2-normalised frozen text features of ``count`` fresh random texts."""
        tokens = random_texts(count, self.params.L, self.context.bundle.context_length, self.context.generator)
        return F.normalize(self.model.encode_text(tokens.to(self.context.device)), dim=-1)

    def prepare(self, batches: Batches, validation: Batches | None = None) -> None:
        if self.params.text_bank:
            chunks = [
                self.encode_random_texts(min(512, self.params.text_bank - start))
                for start in range(0, self.params.text_bank, 512)
            ]
            self.bank.copy_(torch.cat(chunks))

    def random_text_features(self) -> torch.Tensor:
        """This step's M random-text features: fresh, or drawn from the bank."""
        if not self.params.text_bank:
            return self.encode_random_texts(self.params.M)
        pick = torch.randperm(self.params.text_bank, generator=self.context.generator)[: self.params.M]
        return self.bank[pick.to(self.bank.device)]

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.image_features(images)
        ce = F.cross_entropy(self.scale * features @ self.head, labels)
        p = self.params
        texts = self.random_text_features()
        reference = self.zero_shot_features(images)
        v = self.scale * features @ texts.T
        v0 = self.scale * reference @ texts.T
        reg = energy_gap(v, v0, p.loss, p.tau)
        return {"loss": ce + p.lam * reg, "ce": ce, "reg": reg}
