"""Benchmarks of the OMS: each figure beside its raw database, broker or HTTP limit.

Run from the repository root: ``python -m bench [--quick] [--scale F] [scenario ...]``
(``make bench [QUICK=1] [SCALE=F] [SCENARIO='a b']``). Every scenario measures our figure
and its reference in the same run and reports the ratio; results go to ``bench/results/``
(``<scenario>.json``, ``<scenario>.md``, ``SUMMARY.md``). ``--quick`` runs every scenario
at small sizes; ``--scale`` shrinks (or grows) the full sizes, e.g. 0.1 for 5,000 instead
of 50,000 orders. The helpers' unit tests: ``pytest -q bench/tests`` (never part of
``make test``).

Adding a scenario: a module in ``bench/scenarios/`` with a function decorated by
:func:`bench.registry.scenario`. It is discovered automatically.
"""
