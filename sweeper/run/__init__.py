"""Running a sweep: launch and resume with Ray Tune (``launch``, ``resume``, ``resume_state``), the
trial Ray runs (``trial_entry``, ``trial``), the searcher (``space``), the live view (``live``),
a Ray cluster and its storage (``cluster``, ``files``), sweeps as Ray Jobs (``jobs``), imports
paid once (``heavy_imports``), and search-then-confirm (``confirm``). Light on purpose: import the
submodule you need.
"""
