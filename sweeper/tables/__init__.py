"""The tables of a sweep: ablation statistics over seeds (``ablation``), their display grid
(``display``), the renderers (``formats``: terminal, Markdown, LaTeX, HTML, CSV), the papers'
layouts (``paper``) and reference rows above an ablation (``reference_rows``). Light on purpose:
import the submodule you need.
"""
