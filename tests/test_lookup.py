"""Nearest-code lookup: the compiled kernel returns the float64 argmin of the squared distances."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from treasure_hf.tokenization.lookup import kernel_available, nearest_code


def test_the_kernel_is_installed():
    assert kernel_available()  # numba is a dependency: without it every CPU lookup takes the matmul path


def distances(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """(n, K) squared distances sum_i (x_i - c_i)^2 in float64, without the matmul expansion."""
    return ((x.double()[:, None, :] - book.double()[None]) ** 2).sum(-1)


def reference(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """Argmin of the float64 squared distances, lowest index on a tie."""
    if len(x) == 0:
        return torch.empty(0, dtype=torch.long)
    return torch.cat([distances(part, book).argmin(-1) for part in x.split(1000)])


def gaussian(n: int, k: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)


@pytest.mark.parametrize("n, k", [(5000, 300), (4999, 1), (1, 1000), (17, 7), (3000, 2049)])
def test_kernel_is_the_float64_argmin(n, k):
    x, book = gaussian(n, k, 16, n + k)
    codes = nearest_code(x, book, method="kernel")
    assert codes.dtype == torch.long and codes.shape == (n,)
    assert torch.equal(codes, reference(x, book))


def test_no_vectors():
    _, book = gaussian(1, 64, 16, 1)
    assert nearest_code(torch.empty(0, 16), book).shape == (0,)
    with pytest.raises(ValueError, match="empty"):
        nearest_code(torch.zeros(3, 16), book[:0])
    with pytest.raises(ValueError, match="share d"):
        nearest_code(torch.zeros(3, 8), book)


def test_other_dimension_is_padded_with_zeros():
    x, book = gaussian(2000, 100, 6, 2)  # padded to 8 columns, which changes no distance
    assert torch.equal(nearest_code(x, book, method="kernel"), reference(x, book))


def test_large_norms_and_a_common_offset():
    # latents far from the origin: the float32 expansion |c|^2/2 - x.c cancels catastrophically,
    # so nearly every vector goes through the float64 check and must still be exact
    x, book = gaussian(1500, 200, 16, 3)
    x, book = 1000.0 + x, 1000.0 + book
    assert torch.equal(nearest_code(x, book, method="kernel"), reference(x, book))
    x, book = gaussian(300, 50, 16, 4)
    x = x * 1e31  # float32 scores would overflow: searched in float64 only
    assert torch.equal(nearest_code(x, book, method="kernel"), reference(x, book))


def test_ties_go_to_the_lowest_index():
    x, book = gaussian(400, 40, 16, 5)
    book[30] = book[7]  # a duplicated code never wins over the first copy
    book[12] = book[3]
    x[:40] = book  # vectors sitting exactly on a code
    codes = nearest_code(x, book, method="kernel")
    assert torch.equal(codes, reference(x, book))
    assert not bool(((codes == 30) | (codes == 12)).any())
    assert codes[30] == 7 and codes[12] == 3 and codes[5] == 5


def test_near_ties_are_settled_in_float64():
    # two codes at distances from x that differ by ~1e-7 relative: below float32 resolution
    g = torch.Generator().manual_seed(6)
    x = torch.randn(256, 16, generator=g)
    step = torch.randn(256, 16, generator=g)
    near, far = x + step, x - step * (1 + 3e-7)
    book = torch.cat([far, near, torch.randn(100, 16, generator=g) * 10])
    codes = nearest_code(x, book, method="kernel")
    assert torch.equal(codes, reference(x, book))


def test_same_tokens_as_the_matmul_path_except_its_float32_near_ties():
    x, book = gaussian(20_000, 512, 16, 7)
    kernel, matmul, exact = (
        nearest_code(x, book, method="kernel"),
        nearest_code(x, book, 777, 100, method="matmul"),
        reference(x, book),
    )
    assert torch.equal(kernel, exact)
    differ = kernel != matmul
    assert int(differ.sum()) <= 5  # the matmul path rounds in float32
    d = distances(x[differ], book)
    rows = torch.arange(int(differ.sum()))
    gap = d[rows, matmul[differ]] - d[rows, kernel[differ]]
    assert bool((gap >= 0).all()) and bool((gap <= 1e-5 * d[rows, kernel[differ]]).all())


def test_non_finite_vectors_fall_back_and_leave_the_others_exact():
    x, book = gaussian(3000, 128, 16, 8)
    x[10, 3] = float("nan")
    x[2000, 0] = float("inf")
    codes = nearest_code(x, book, method="kernel")
    ok = torch.isfinite(x).all(-1)
    assert torch.equal(codes[ok], reference(x[ok], book))
    assert bool(((codes >= 0) & (codes < 128)).all())


def test_kernel_refuses_what_it_cannot_do():
    x, book = gaussian(10, 8, 16, 9)
    with pytest.raises(ValueError, match="float32"):
        nearest_code(x.double(), book.double(), method="kernel")
    with pytest.raises(ValueError, match="method"):
        nearest_code(x, book, method="fastest")
    assert torch.equal(nearest_code(x.double(), book.double()), reference(x, book))  # auto: matmul path


def _lookup_in_child(seed: int) -> list[int]:
    x, book = gaussian(6000, 64, 16, seed)
    return nearest_code(x, book, method="kernel").tolist()


def test_threads_and_a_forked_child():
    x, book = gaussian(6000, 64, 16, 10)  # enough vectors for several threads
    expected = reference(x, book)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert torch.equal(nearest_code(x, book, method="kernel"), expected)  # the parent's thread pool is up
    finally:
        torch.set_num_threads(threads)
    with multiprocessing.get_context("fork").Pool(1) as pool:  # a child forked after it makes its own
        assert pool.apply(_lookup_in_child, (10,)) == expected.tolist()
