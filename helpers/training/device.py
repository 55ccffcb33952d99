"""Device ("auto": CUDA when present, else the CPU), seeds, and the library versions a saved model records.
"""
from __future__ import annotations

import random
from importlib import metadata as importlib_metadata

import numpy as np
import torch

DEVICES = ["auto", "cpu", "cuda"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cpu" / "cuda" / "cuda:N" as given (CUDA must exist)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python's random, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def library_versions() -> dict:
    """Versions of the libraries a saved model depends on (for its metadata)."""
    out = {}
    for pkg in ("torch", "fastai", "numpy", "pandas"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = None
    return out

