"""Run the ``sweeper`` CLI with timestamps at the driver's steps, for ``bench_startup.py``.

``python bench/startup_probe.py LOG ARGS...`` is ``sweeper ARGS...`` that also appends
``<time> <step>.start|end`` lines to LOG around the functions in ``STEPS``. Each is wrapped when
its module is first imported, so the CLI imports what it imports, when it imports it, as it does
without the probe. Trial-side times come from MLflow (the trial's run), not from here.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import sys
import time
from typing import Any

# module -> [(attribute path, step)]
STEPS = {
    "sweeper.cli": [("main", "cli")],
    "sweeper.spec.loading": [("load", "checks")],
    "sweeper.tracking.runs": [("start_sweep", "mlflow_parent"), ("finish_sweep", "finish_sweep")],
    "sweeper.run.driving": [("ensure_ray", "ray_init"), ("_release_at_exit", "ray_shutdown")],
    "ray.tune.tuner": [("Tuner.__init__", "tuner"), ("Tuner.fit", "fit")],
}
IMPORTS = ("sweeper.spec.loading", "sweeper.run.launch")  # also timed: their imports (torch, Ray Tune, MLflow)


def main() -> None:
    log = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115  # open until exit, line by line

    def mark(step: str) -> None:
        log.write(f"{time.time():.4f} {step}\n")

    def wrap(owner: Any, name: str, step: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            mark(f"{step}.start")
            try:
                return original(*args, **kwargs)
            finally:
                mark(f"{step}.end")

        setattr(owner, name, timed)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            if fullname not in STEPS and fullname not in IMPORTS:
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(fullname)
            finally:
                sys.meta_path.insert(0, self)
            loader = spec.loader if spec else None
            if loader is None:
                return spec
            execute = loader.exec_module

            def exec_module(module: Any) -> None:
                mark(f"import:{fullname}.start")
                execute(module)
                mark(f"import:{fullname}.end")
                for attribute, step in STEPS.get(fullname, []):
                    *parents, name = attribute.split(".")
                    owner = module
                    for parent in parents:
                        owner = getattr(owner, parent)
                    wrap(owner, name, step)

            loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Finder())
    from sweeper import cli

    sys.argv = ["sweeper", *sys.argv[2:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
