"""One adapter per quantizer method (``vq``, ``pq``, ``rvq``, ``fsq``): how it is built, how it
quantizes in training, where its codebooks are, how codes are looked up and turned back into a
latent. The only place that reads vector-quantize-pytorch's private attributes
(``_codebook.embed``, ``layers``).

Shapes: ``latent`` (n, latent_dim), ``codes`` (n, num_stages) int64, codebooks
(codebook_size, dim).
"""

from __future__ import annotations

import torch
from torch import nn
from vector_quantize_pytorch import ResidualVQ, VectorQuantize

from .configuration_quantizer import ObjectQuantizerConfig
from .fsq import FiniteScalarQuantizer
from .lookup import nearest_code


def _library_options(config: ObjectQuantizerConfig) -> dict[str, object]:
    """EMA updates, k-means initialisation, dead-code restart and commitment loss."""
    return dict(
        decay=config.ema_decay,
        kmeans_init=config.kmeans_init,
        kmeans_iters=10,
        threshold_ema_dead_code=config.dead_code_threshold,
        commitment_weight=config.commitment_weight,
    )


class MethodAdapter:
    """The vector-quantize-pytorch methods: one codebook per stage, nearest-code lookup."""

    def build(self, config: ObjectQuantizerConfig) -> nn.Module:
        raise NotImplementedError

    def quantize(self, module: nn.Module, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass (EMA updates): (1, n, dim) -> quantized (1, n, dim), codes (n, stages),
        commitment loss (scalar)."""
        q, codes, commit = module(latent)
        return q, codes.reshape(latent.shape[1], -1), commit.sum()

    def codebooks(self, module: nn.Module) -> list[torch.Tensor]:
        """The codebook of each stage, (codebook_size, dim)."""
        raise NotImplementedError

    def tokenize(self, module: nn.Module, latent: torch.Tensor) -> torch.Tensor:
        """Codes of (n, dim) latents, (n, stages), by exact nearest-code lookup."""
        raise NotImplementedError

    def latent_from_codes(self, module: nn.Module, codes: torch.Tensor) -> torch.Tensor:
        """(..., stages) codes -> (..., latent_dim)."""
        raise NotImplementedError


class VQAdapter(MethodAdapter):
    """One codebook."""

    def build(self, config: ObjectQuantizerConfig) -> nn.Module:
        return VectorQuantize(dim=config.latent_dim, codebook_size=config.codebook_size, **_library_options(config))

    def codebooks(self, module: nn.Module) -> list[torch.Tensor]:
        return [module._codebook.embed[0]]

    def tokenize(self, module: nn.Module, latent: torch.Tensor) -> torch.Tensor:
        return nearest_code(latent, self.codebooks(module)[0])[:, None]

    def latent_from_codes(self, module: nn.Module, codes: torch.Tensor) -> torch.Tensor:
        return self.codebooks(module)[0][codes[..., 0]]


class PQAdapter(MethodAdapter):
    """The latent split into ``num_stages`` groups, one codebook each (separate heads)."""

    def build(self, config: ObjectQuantizerConfig) -> nn.Module:
        return VectorQuantize(
            dim=config.latent_dim,
            codebook_size=config.codebook_size,
            heads=config.num_stages,
            separate_codebook_per_head=True,
            codebook_dim=config.latent_dim // config.num_stages,
            **_library_options(config),
        )

    def codebooks(self, module: nn.Module) -> list[torch.Tensor]:
        embed = module._codebook.embed
        return [embed[h] for h in range(embed.shape[0])]

    def tokenize(self, module: nn.Module, latent: torch.Tensor) -> torch.Tensor:
        books = self.codebooks(module)
        return torch.stack([nearest_code(p, b) for p, b in zip(latent.chunk(len(books), dim=-1), books)], -1)

    def latent_from_codes(self, module: nn.Module, codes: torch.Tensor) -> torch.Tensor:
        return torch.cat([b[codes[..., h]] for h, b in enumerate(self.codebooks(module))], dim=-1)


class RVQAdapter(MethodAdapter):
    """``num_stages`` residual codebooks: each quantizes what the earlier ones left."""

    def build(self, config: ObjectQuantizerConfig) -> nn.Module:
        return ResidualVQ(
            dim=config.latent_dim,
            num_quantizers=config.num_stages,
            codebook_size=config.codebook_size,
            **_library_options(config),
        )

    def codebooks(self, module: nn.Module) -> list[torch.Tensor]:
        return [layer._codebook.embed[0] for layer in module.layers]

    def tokenize(self, module: nn.Module, latent: torch.Tensor) -> torch.Tensor:
        residual, stages = latent, []
        for book in self.codebooks(module):
            idx = nearest_code(residual, book)
            stages.append(idx)
            residual = residual - book[idx]
        return torch.stack(stages, -1)

    def latent_from_codes(self, module: nn.Module, codes: torch.Tensor) -> torch.Tensor:
        return sum(b[codes[..., s]] for s, b in enumerate(self.codebooks(module)))


class FSQAdapter(MethodAdapter):
    """Finite scalar quantization (:mod:`.fsq`): codes by rounding, no codebook, no commitment."""

    def build(self, config: ObjectQuantizerConfig) -> nn.Module:
        return FiniteScalarQuantizer(config.fsq_levels, config.latent_dim, config.num_stages)

    def quantize(self, module: nn.Module, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, codes = module(latent)
        return q, codes.reshape(latent.shape[1], -1), torch.zeros((), device=latent.device)

    def codebooks(self, module: nn.Module) -> list[torch.Tensor]:
        raise ValueError("FSQ has no codebook to search: its codes are computed by rounding")

    def tokenize(self, module: nn.Module, latent: torch.Tensor) -> torch.Tensor:
        return module(latent[None])[1].reshape(len(latent), -1)

    def latent_from_codes(self, module: nn.Module, codes: torch.Tensor) -> torch.Tensor:
        return module.indices_to_codes(codes)


ADAPTERS: dict[str, MethodAdapter] = {"vq": VQAdapter(), "pq": PQAdapter(), "rvq": RVQAdapter(), "fsq": FSQAdapter()}
"""The adapter of each :data:`~.configuration_quantizer.METHODS` entry."""
