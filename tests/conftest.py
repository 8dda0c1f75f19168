"""Fixtures shared by the test modules."""

import pytest

from helpers import ISA_LEVELS
from striate import _C


@pytest.fixture(params=ISA_LEVELS)
def isa(request):
    """Run the test once per ISA level this machine supports, restoring the selection after."""
    before = _C.isa_selected()
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)
