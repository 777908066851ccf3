"""Benchmarks of the OMS: each figure beside its raw database or broker limit.

Run from the repository root: ``python -m bench [--quick] [scenario ...]`` (``make bench``).
Every scenario measures our figure and its reference in the same run and reports the ratio;
results go to ``bench/results/`` (``<scenario>.json``, ``<scenario>.md``, ``SUMMARY.md``).

Adding a scenario: a module in ``bench/scenarios/`` with a function decorated by
:func:`bench.registry.scenario`. It is discovered automatically.
"""
