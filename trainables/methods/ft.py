"""FT: end-to-end fine-tuning of the image tower and a zero-shot-initialised linear head with CE.

As in the Lipsum-FT reference (its lambda = 0 case) and WiSE-FT's fine-tuning: the text tower
is only used to build the head, and the logit scale stays fixed.
"""

from __future__ import annotations

from trainables.methods.base import ImageClassifier
from trainables.methods.params.ft import FTParams
from trainables.registry import register


@register("ft")
class FineTune(ImageClassifier):
    """Cross-entropy on ``s * F_theta(x) @ W``, training the image tower and W."""

    Params = FTParams
