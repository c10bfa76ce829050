"""Nearest-code lookup as a blocked matrix multiply plus a running argmin.

``argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 / 2 - x.c_k)``: one sgemm per block of
``rows`` vectors by ``cols`` codes, reduced at once while the block is still in cache, so memory
stays bounded by one block whatever the number of vectors and codes. With 16-dimensional codes
the multiply has a tiny inner dimension and the min-reduction is not multiply-add work, so the
lookup reaches about a tenth of the machine's sgemm peak (``benchmarks/tokenization.py``), an order
of magnitude above vector-quantize-pytorch's lookup.
"""

from __future__ import annotations

import torch

ROWS, COLS = 1024, 1024
"""Block shape: 4 MB of float32 scores, which stays in cache between the multiply and the min."""


@torch.no_grad()
def nearest_code(x: torch.Tensor, codebook: torch.Tensor, rows: int = ROWS, cols: int = COLS) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``x``.

    ``x``: (n, d); ``codebook``: (K, d). Returns (n,) int64.
    """
    x = x.to(codebook.dtype)
    half_norm = 0.5 * (codebook * codebook).sum(-1)  # (K,)
    book_t = codebook.t().contiguous()  # (d, K)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    n_codes = codebook.shape[0]
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        best_value, best_index = None, None
        for first in range(0, n_codes, cols):
            scores = torch.addmm(half_norm[first:first + cols].unsqueeze(0), block, book_t[:, first:first + cols],
                                 beta=1.0, alpha=-1.0)
            value, index = scores.min(dim=-1)
            if best_value is None:
                best_value, best_index = value, index
            else:  # strictly better only: an earlier (lower) index wins a tie
                better = value < best_value
                best_value = torch.where(better, value, best_value)
                best_index = torch.where(better, index + first, best_index)
        out[start:start + rows] = best_index
    return out
