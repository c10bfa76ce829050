"""Nearest-code lookup as a chunked matrix multiply plus argmin.

``argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 - 2 x.c_k)``: one sgemm per chunk of vectors, so
the lookup runs near the machine's matrix-multiply speed and its memory stays bounded by
``chunk x K`` distances whatever the number of vectors.
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK = 4096


@torch.no_grad()
def nearest_code(x: torch.Tensor, codebook: torch.Tensor, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``x``.

    ``x``: (n, d); ``codebook``: (K, d). Returns (n,) int64. Ties go to the lower index.
    """
    x = x.to(codebook.dtype)
    half_norm = 0.5 * (codebook * codebook).sum(-1)  # (K,)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], chunk):
        block = x[start:start + chunk]
        # ||c||^2/2 - x.c has the same argmin as the squared distance, with half the work.
        scores = torch.addmm(half_norm.unsqueeze(0), block, codebook.t(), beta=1.0, alpha=-1.0)
        out[start:start + chunk] = scores.argmin(dim=-1)
    return out
