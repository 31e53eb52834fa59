"""Trace replay: demand traces, an emulated HPA, baselines, an oracle and reports.

Pure (numpy, no I/O, no clock) except :mod:`.inputs`, :mod:`.servingbench` and the trace
loaders.  Entry points:

* :func:`servingopt.simulate.engine.replay` — one policy against one trace;
* :func:`servingopt.simulate.compare.compare` — several policies plus the oracle;
* :mod:`servingopt.simulate.hpa` — the HPA v2 controller algorithm;
* :mod:`servingopt.simulate.traces` — generators and loaders.
"""
