"""MLflow: the runs a sweep logs (``runs``), the tracking URI rules (``uri``), reading a sweep
back as pandas frames (``results``), provenance of a run (``provenance``), and reading runs
without MLflow for ``sweeper status`` (``run_store``, ``rest_store``, ``run_records``,
``sweep_runs``). Light on purpose: import
the submodule you need (``runs`` and ``results`` import MLflow).
"""
