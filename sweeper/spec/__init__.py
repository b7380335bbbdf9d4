"""The sweep file: its schema (``schema``), loading and validation (``loading``, ``checks`` and the
``*_checks`` modules: model, parameters, metric names), a grid's points (``grid``) and the
reference methods (``references``). Light on purpose: import the submodule you need.
"""
