"""Nearest-code lookup: the index of the codebook row closest to each vector, exactly.

``argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 / 2 - x.c_k)``. Two implementations:

- **kernel** (CPU float32, the default there): a compiled numba kernel. A block of 16 vectors
  sits transposed in registers (one AVX-512 register per dimension, two on AVX2); each code costs
  ``d`` fused multiply-adds with the code's components broadcast from memory, then an update of
  each vector's best score, second-best score and best index. No score matrix is written, so the
  lookup is bound by multiply-add throughput rather than memory (``benchmarks/tokenization.py``
  compares it with the machine's sgemm FLOP/s). ``d`` is padded with zeros to a multiple of 4 (one
  compiled kernel per padded ``d``: a few seconds at its first use, then cached by numba in
  ``__pycache__``). The vectors are cut into pieces run on ``torch.get_num_threads()`` Python
  threads (the kernel releases the GIL), which keeps it safe with threads and with ``fork``.
- **matmul** (CUDA tensors, other dtypes, or numba missing): a blocked matrix multiply of
  ``rows`` vectors by ``cols`` codes, reduced at once while the block is still in cache.

Exactness (kernel): ``x`` and the codebook are taken as float32 values (``x`` is converted to the
codebook's dtype). The float32 score of a code is off by less than
``E = 2 (d + 2) 2^-24 (h + ||x|| c) + 2^-24 h``, with ``h = max_k ||c_k||^2 / 2`` and
``c = max_k ||c_k||`` (summation and the rounding of ``||c_k||^2 / 2`` to float32). When the
second-best score is more than ``2 E`` above the best, the best is the exact nearest code;
otherwise every code whose score is within ``2 E`` of the best is measured again as
``sum_i (x_i - c_ki)^2`` in float64 and the smallest wins, the lowest index on an exact tie (as
``torch.argmin``). The result is therefore the argmin of the float64 squared distances, also for
latents far from the origin, where the float32 expansion cancels. Vectors so large that float32
scores could overflow are searched in float64 only; vectors with a NaN or infinite component go
to the matmul path (whose answer for them is arbitrary). The matmul path rounds in float32 and
can pick the other code of a near tie (distances equal to about 1e-7 relative).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

ROWS, COLS = 1024, 1024
"""Block shape of the matmul path: 4 MB of float32 scores, which stays in cache between the
multiply and the min."""

KERNEL_ROWS = 16
"""Vectors per register block of the kernel (one AVX-512 register of float32 per dimension)."""

MIN_ROWS_PER_THREAD = 2048
"""Vectors below which the kernel runs in the calling thread only."""

TASKS_PER_THREAD = 8
"""Pieces per thread that the vectors are cut into (balances threads on a shared machine)."""

_EPS = 2.0**-24  # float32 unit roundoff
_HUGE = 1e30  # scores beyond this could overflow float32: such vectors are searched in float64 only
_METHODS = ("auto", "kernel", "matmul")


# --- the compiled kernel: plain Python here, compiled by numba on first use (kernel_available) ---
def _exact_row(x, book, half_norm, i, threshold, dim):
    """Float64 distance of every code whose float32 score is <= threshold; lowest index wins ties."""
    best, best_j = np.inf, -1
    for j in range(book.shape[0]):
        a = half_norm[j]
        for k in range(dim):
            a -= x[i, k] * book[j, k]
        if a <= threshold:
            dist = 0.0
            for k in range(dim):
                diff = np.float64(x[i, k]) - np.float64(book[j, k])
                dist += diff * diff
            if dist < best:
                best, best_j = dist, j
    return best_j


def _exact_row_float64(x, book, i):
    """Float64 distances to every code (for vectors so large that float32 scores could overflow)."""
    best, best_j = np.inf, -1
    for j in range(book.shape[0]):
        dist = 0.0
        for k in range(book.shape[1]):
            diff = np.float64(x[i, k]) - np.float64(book[j, k])
            dist += diff * diff
        if dist < best:
            best, best_j = dist, j
    return best_j


def _search_for(dim: int):
    """The search for ``dim``-dimensional vectors: ``dim`` is a constant of the compiled code (loops
    over it unroll, and the 16 vectors of a block stay in ``dim`` registers)."""

    def search(x, book, half_norm, bound, out, start, stop):
        """Best code of rows [start, stop) of x."""
        n_codes = book.shape[0]
        xt = np.empty((dim, 16), dtype=np.float32)
        b1 = np.empty(16, dtype=np.float32)  # best score of each vector
        b2 = np.empty(16, dtype=np.float32)  # second-best score
        bi = np.empty(16, dtype=np.float32)  # index of the best (exact in float32 below 2^24 codes)
        big = np.float32(3.0e38)
        for r0 in range(start, stop, 16):
            for r in range(16):
                i = min(r0 + r, stop - 1)
                for k in range(dim):
                    xt[k, r] = x[i, k]
            b1[:] = big
            b2[:] = big
            bi[:] = 0
            for j in range(n_codes):
                h = half_norm[j]
                jf = np.float32(j)
                for r in range(16):  # vectorised: 16 vectors in one register
                    a = h
                    for k in range(dim):
                        a -= xt[k, r] * book[j, k]
                    old = b1[r]
                    hi = a if a > old else old
                    b2[r] = hi if hi < b2[r] else b2[r]
                    bi[r] = jf if a < old else bi[r]
                    b1[r] = a if a < old else old
            for r in range(min(16, stop - r0)):
                i = r0 + r
                e = bound[i]
                if e < -1.5:  # scores could overflow float32
                    out[i] = _exact_row_float64(x, book, i)
                elif e < 0.0:  # NaN or infinite component: left to the matmul path
                    out[i] = -1
                else:
                    threshold = np.float64(b1[r]) + 2.0 * e
                    if np.float64(b2[r]) <= threshold:  # a near tie: settle it in float64
                        out[i] = _exact_row(x, book, half_norm, i, threshold, dim)
                    else:
                        out[i] = np.int64(bi[r])

    return search


def _bounds(x, start, stop, scale, half_norm_max, norm_max, bound):
    """Rounding-error bound of each row's float32 scores, or -1 for a row with a non-finite
    component, -2 for one whose scores could overflow float32 (no fastmath here)."""
    for i in range(start, stop):
        s = 0.0
        for k in range(x.shape[1]):
            v = np.float64(x[i, k])
            s += v * v
        if not np.isfinite(s):
            bound[i] = -1.0
        else:
            size = half_norm_max + np.sqrt(s) * norm_max
            bound[i] = -2.0 if size > _HUGE else scale * size + _EPS * half_norm_max


_JITTED = ("_exact_row", "_exact_row_float64", "_bounds")
_FASTMATH = ("_exact_row",)  # contraction and reassociation: covered by the error bound
_searches: dict = {}  # dim -> compiled search
_compiled: bool | None = None
_run_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


_numba: list = []
"""The numba module once :func:`kernel_available` found it."""


def kernel_available() -> bool:
    """True if the compiled CPU kernel can be used (numba importable). Compilation itself happens
    at the first call for each padded dimension (a few seconds, then cached in ``__pycache__``)."""
    global _compiled
    if _compiled is None:
        with _run_lock:
            if _compiled is None:
                try:
                    import numba
                except ImportError:
                    _compiled = False
                else:
                    _numba.append(numba)
                    module = globals()
                    for name in _JITTED:
                        module[name] = numba.njit(nogil=True, cache=True, fastmath=name in _FASTMATH)(module[name])
                    _compiled = True
    return _compiled


def _search(dim: int):
    """The compiled search for ``dim`` (compiled at its first call, cached on disk by numba)."""
    if dim not in _searches:
        numba = _numba[0]  # imported by kernel_available(): numba stays an optional dependency

        with _run_lock:
            if dim not in _searches:
                _searches[dim] = numba.njit(nogil=True, fastmath=True, cache=True)(_search_for(dim))
    return _searches[dim]


def _run(x, book, half_norm, scale, half_norm_max, norm_max, bound, out, start, stop, dim):
    _bounds(x, start, stop, scale, half_norm_max, norm_max, bound)
    _search(dim)(x, book, half_norm, bound, out, start, stop)


def _executor(workers: int) -> ThreadPoolExecutor:
    """A thread pool of this process (a forked child makes its own)."""
    global _pool
    with _run_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != workers:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            _pool = (os.getpid(), workers, ThreadPoolExecutor(workers, thread_name_prefix="nearest_code"))
        return _pool[2]


def _padded(a: np.ndarray, dim: int) -> np.ndarray:
    """C-contiguous float32 copy of ``a`` with zero columns up to ``dim`` (zeros change no score)."""
    if a.shape[1] == dim and a.flags.c_contiguous:
        return a
    out = np.zeros((a.shape[0], dim), dtype=np.float32)
    out[:, : a.shape[1]] = a
    return out


def _nearest_code_kernel(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    n, d = x.shape
    dim = max(4, -(-d // 4) * 4)  # one compiled kernel per multiple of 4
    book64 = codebook.detach().to(torch.float64).numpy()
    norms2 = (book64 * book64).sum(1)
    half_norm = (0.5 * norms2).astype(np.float32)
    xs = _padded(x.detach().numpy(), dim)
    book = _padded(codebook.detach().numpy(), dim)
    scale = 2.0 * (dim + 2) * _EPS
    half_norm_max, norm_max = float(0.5 * norms2.max()), float(math.sqrt(norms2.max()))
    bound = np.empty(n, dtype=np.float64)
    out = np.empty(n, dtype=np.int64)
    args = (xs, book, half_norm, scale, half_norm_max, norm_max, bound, out)
    workers = max(1, min(torch.get_num_threads(), n // MIN_ROWS_PER_THREAD))
    if workers == 1:
        _run(*args, 0, n, dim)
    else:  # several pieces per thread, so that a thread slowed down by other jobs delays little
        step = -(-max(MIN_ROWS_PER_THREAD // 2, n // (TASKS_PER_THREAD * workers)) // KERNEL_ROWS) * KERNEL_ROWS
        jobs = [_executor(workers).submit(_run, *args, s, min(n, s + step), dim) for s in range(0, n, step)]
        for job in jobs:
            job.result()
    result = torch.from_numpy(out)
    bad = result < 0
    if bool(bad.any()):
        result[bad] = _nearest_code_matmul(x[bad], codebook, ROWS, COLS)
    return result


# --- the matmul path ---------------------------------------------------------------------------
def _nearest_code_matmul(x: torch.Tensor, codebook: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    half_norm = 0.5 * (codebook * codebook).sum(-1)  # (K,)
    book_t = codebook.t().contiguous()  # (d, K)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    n_codes = codebook.shape[0]
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        best_value, best_index = None, None
        for first in range(0, n_codes, cols):
            scores = torch.addmm(
                half_norm[first : first + cols].unsqueeze(0),
                block,
                book_t[:, first : first + cols],
                beta=1.0,
                alpha=-1.0,
            )
            value, index = scores.min(dim=-1)
            if best_value is None:
                best_value, best_index = value, index
            else:  # strictly better only: an earlier (lower) index wins a tie
                better = value < best_value
                best_value = torch.where(better, value, best_value)
                best_index = torch.where(better, index + first, best_index)
        out[start : start + rows] = best_index
    return out


def _kernel_applies(x: torch.Tensor, codebook: torch.Tensor) -> str | None:
    """None if the kernel can serve this call, else why not."""
    if x.device.type != "cpu" or codebook.device.type != "cpu":
        return "the kernel runs on CPU tensors only"
    if codebook.dtype != torch.float32:
        return f"the kernel needs a float32 codebook, not {codebook.dtype}"
    if codebook.shape[0] >= 2**24:
        return "the kernel handles fewer than 2^24 codes"
    if not bool(torch.isfinite(codebook).all()) or float(codebook.abs().max()) > 1e15:
        return "the codebook has non-finite or huge (> 1e15) entries"
    if not kernel_available():
        return "numba is not installed"
    return None


def nearest_code_dense(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The definition the fast lookups compute, in plain tensor ops for graphs (ONNX export):
    the index of the codebook row at the least squared distance from each row of ``x``, the
    distances summed in float64, ties to the lowest index. ``x`` (n, d), ``codebook`` (K, d) ->
    (n,) int64. Memory n x K x d: for exports and checks, not for bulk tokenization."""
    diff = x.to(torch.float64).unsqueeze(1) - codebook.to(torch.float64).unsqueeze(0)
    return (diff * diff).sum(-1).argmin(-1)


@torch.no_grad()
def nearest_code(
    x: torch.Tensor, codebook: torch.Tensor, rows: int = ROWS, cols: int = COLS, method: str = "auto"
) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``x``.

    ``x``: (n, d); ``codebook``: (K, d). Returns (n,) int64 on ``x``'s device. ``method``:
    ``"kernel"`` (compiled CPU kernel, exact), ``"matmul"`` (torch, blocks of ``rows`` x ``cols``)
    or ``"auto"`` (the kernel where it applies: CPU float32 codebook and numba installed).
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, not {method!r}")
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(f"x (n, d) and codebook (K, d) must share d: got {tuple(x.shape)} and {tuple(codebook.shape)}")
    if codebook.shape[0] == 0:
        raise ValueError("the codebook is empty")
    x = x.to(codebook.dtype)
    if x.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=x.device)
    if method != "matmul":
        why_not = _kernel_applies(x, codebook)
        if why_not is None:
            return _nearest_code_kernel(x.contiguous(), codebook.contiguous())
        if method == "kernel":
            raise ValueError(why_not)
    return _nearest_code_matmul(x, codebook, rows, cols)
