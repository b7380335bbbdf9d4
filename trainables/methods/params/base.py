"""The base of every method's declaration: hyperparameters plus what the driver needs to know.

A method's ``Params`` class is all that checking a sweep file or listing the methods needs, so it
imports no torch (torch alone takes about two seconds to import, and ``sweeper validate`` should
answer at once). The method's ``torch.nn.Module`` refers to it as its ``Params``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class MethodParams(BaseModel):
    """Base of every method's hyperparameters: strict, immutable, unknown keys rejected.

    Class attributes declare the method: its registered ``method`` name (set by
    ``trainables.registry.register_params``), its ``paper``, whether it ``trains``, whether its
    weights are ``interpolable`` with the zero-shot ones, and its train ``recipes`` by model family
    (``"tiny"``: the shipped zoo, ``"clip"``: real open_clip weights), laid over the family's base
    recipe (``trainables.recipes``) for every key a trial leaves unset; the sweep file's train
    section and searched values win. The first line of the class docstring is the method's
    one-line summary in ``sweeper methods``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    trains: ClassVar[bool] = True  # False: evaluated as is, no optimisation
    # True when the trained weights live in the zero-shot model's parameter space (after any merge),
    # so that WiSE-FT's interpolation (1 - alpha) * theta_zs + alpha * theta means something:
    # ``posthoc: {wise: ...}`` is accepted for these methods only.
    interpolable: ClassVar[bool] = False
    # Method-specific metric families the method logs, beyond the standard ones every trial logs
    # (``lp/``: the linear probe, ``compat/``: model-update compatibility, ``wise/``: the WiSE curve,
    # ``params/visual_fraction``); an objective from a family no method of the sweep logs is refused.
    logs: ClassVar[tuple[str, ...]] = ()
    recipes: ClassVar[dict[str, dict[str, Any]]] = {}

    def check_model(self, context_length: int) -> None:
        """Reject values that do not fit the model, whose text context is ``context_length`` tokens
        (raise ``trainables.errors.InputError`` naming the parameter). Runs at sweep validation and
        again when the trial starts."""
