"""``python -m striate.bench``: the classic-CNN layer suite.

Per case and algorithm it prints the time, GFLOP/s, % of this machine's fp32
peak (measured in the same run by striate's FMA loop, :func:`peak_gflops`),
the max error against :mod:`striate.reference`, the speedup over that NumPy
reference and, when PyTorch is importable, PyTorch's time and the ratio.
``python -m striate.bench --help`` lists the options; docs/benchmarks.md
explains the columns.

* :mod:`.cases` -- the layers (``build_cases``), shared with ``benchmarks/``
* :mod:`.runner` -- checking and interleaved timing of one case
* :mod:`.peak` -- the fp32 peak measurement
* :mod:`.report` -- header, table, Markdown, JSON, plot
* :mod:`.cli` -- the command line
"""

from .cases import Case, build_cases
from .cli import main
from .peak import peak_gflops
from .runner import Settings, run_case

__all__ = ["Case", "build_cases", "main", "peak_gflops", "Settings", "run_case"]
