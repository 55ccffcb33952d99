"""Shared fixtures. Tests run from the repository root (`make test`); `-m "not slow"` skips the notebook
runs, subprocesses and full trainings (everything under tests/integration and tests/notebooks)."""
from pathlib import Path

import pytest

from helpers.files import ROOT

SHARED_SPLIT = ROOT.parent / "shared" / "data" / "ml-latest-small-seed-split"
SLOW_FOLDERS = ("integration", "notebooks")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(item.fspath).parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ml100k():
    from helpers.data import load

    return load("ml-100k", verbose=False)


@pytest.fixture
def seed_split_dir():
    if not (SHARED_SPLIT / "train.csv").exists():
        pytest.skip(f"{SHARED_SPLIT} is absent: the original notebook's split ships only with the "
                    "project's shared folder (CI has it; a plain clone does not)")
    return SHARED_SPLIT


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one thread is faster than two fighting over a small, shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
