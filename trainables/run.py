"""Run one trial without Ray or MLflow: ``python -m trainables.run trial.yaml``.

The YAML holds a :class:`trainables.config.TrialConfig` (method, model, data, train, params, seed).
Each epoch's metrics are printed as one JSON line, and after the last epoch the trial's summary
(``"summary": true``: the epoch best on validation, ``last/*``, ``best_epoch``);
``--checkpoint-dir`` keeps each epoch's state and ``--resume`` continues from the latest one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from trainables.config import TrialConfig
from trainables.errors import InputError
from trainables.loop import CheckpointWriter, run


def _load(path: Path) -> TrialConfig:
    if not path.is_file():
        raise InputError(str(path), "trial file does not exist")
    try:
        return TrialConfig.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as error:
        raise InputError(str(path), f"malformed YAML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: {where}", first["msg"]) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainables.run", description=__doc__.splitlines()[0])
    parser.add_argument("trial", type=Path, help="trial YAML file")
    parser.add_argument("--checkpoint-dir", type=Path, help="write epoch_<n>/ checkpoints here")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    try:
        config = _load(args.trial)
        resume = None
        if args.resume and args.checkpoint_dir and args.checkpoint_dir.is_dir():
            epochs = sorted(args.checkpoint_dir.glob("epoch_*"), key=lambda p: int(p.name.split("_")[1]))
            resume = epochs[-1] if epochs else None

        def reporter(
            epoch: int,
            metrics: dict[str, float],
            checkpoint: CheckpointWriter | None,
            summary: dict[str, float] | None = None,
        ) -> None:
            if checkpoint is not None and args.checkpoint_dir is not None:
                folder = args.checkpoint_dir / f"epoch_{epoch}"
                folder.mkdir(parents=True, exist_ok=True)
                checkpoint(folder)
            print(json.dumps({"epoch": epoch, **metrics}), flush=True)
            if summary is not None:
                print(json.dumps({"summary": True, **summary}), flush=True)

        run(config, reporter, resume_from=resume)
    except InputError as error:
        print(f"trainables.run: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
