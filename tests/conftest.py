"""Shared fixtures."""
import pytest
from thread_helpers import num_threads


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    """Run the test on 1 and on 2 threads (see thread_helpers.num_threads)."""
    with num_threads(request.param):
        yield request.param
