"""Finite scalar quantization (Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple",
ICLR 2024): project to a few dimensions, bound each with tanh, round to ``levels[i]`` values
(straight-through gradient). The code is the mixed-radix number of the rounded digits; there is
no codebook to learn or search. Written here (not taken from vector-quantize-pytorch) because the
library's FSQ cannot be built on the meta device that ``from_pretrained`` uses."""

from __future__ import annotations

import torch
from torch import nn


class FiniteScalarQuantizer(nn.Module):
    """``num_codebooks`` independent FSQ codes of ``levels`` digits each, from a ``dim`` latent.

    forward: (..., dim) -> quantized (..., dim), codes (..., num_codebooks) int64.
    """

    def __init__(self, levels: list[int], dim: int, num_codebooks: int = 1, eps: float = 1e-3):
        super().__init__()
        self.levels = [int(v) for v in levels]
        self.num_codebooks = num_codebooks
        self.eps = eps
        width = len(self.levels) * num_codebooks
        self.project_in = nn.Linear(dim, width)
        self.project_out = nn.Linear(width, dim)

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        levels = torch.tensor(self.levels, dtype=torch.float32, device=device)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], device=device), 0)
        return levels, basis, torch.div(levels, 2, rounding_mode="floor")

    def _digits(self, z: torch.Tensor) -> torch.Tensor:
        """Rounded values in [-half, half] (or [-half, half-1] for even levels), straight-through."""
        levels, _, half = self._constants(z.device)
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        bounded = torch.tanh(z + shift) * half_l - offset
        return bounded + (bounded.round() - bounded).detach()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        levels, basis, half = self._constants(z.device)
        h = self.project_in(z.float()).unflatten(-1, (self.num_codebooks, len(self.levels)))
        digits = self._digits(h)
        codes = ((digits.detach() + half).round().long() * basis).sum(-1)
        quantized = self.project_out((digits / half).flatten(-2))
        return quantized.to(z.dtype), codes

    def indices_to_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., num_codebooks) codes -> (..., dim) quantized latent."""
        levels, basis, half = self._constants(codes.device)
        digits = (codes.unsqueeze(-1) // basis) % levels.long()
        return self.project_out(((digits - half) / half).flatten(-2))
