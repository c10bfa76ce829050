"""Configuration of one object type's quantizer (encoder, codebooks, decoder)."""

from __future__ import annotations

import math
from typing import Any

from transformers import PretrainedConfig

METHODS = ("vq", "fsq", "rvq", "pq")
ENCODERS = ("mlp", "transformer", "identity")


def fsq_levels_for(codebook_size: int) -> list[int]:
    """FSQ levels whose product is close to ``codebook_size`` (the FSQ paper's table, Mentzer et al.
    2023, Table 1, extended by the same rule: levels of 5 to 8, largest first)."""
    table = {
        2**6: [8, 8],
        2**8: [8, 6, 5],
        2**9: [8, 8, 8],
        2**10: [8, 5, 5, 5],
        2**11: [8, 8, 6, 5],
        2**12: [7, 5, 5, 5, 5],
        2**14: [8, 8, 8, 6, 5],
        2**16: [8, 8, 8, 5, 5, 5],
    }
    if codebook_size in table:
        return table[codebook_size]
    n = max(1, round(math.log(codebook_size) / math.log(6)))
    level = max(2, round(codebook_size ** (1 / n)))
    return [level] * n


class ObjectQuantizerConfig(PretrainedConfig):
    """Every hyperparameter of an :class:`~treasure_hf.tokenization.ObjectQuantizer`.

    Args:
        object_type: registry group the quantizer encodes (``"electrons"``, ``"jets"``, ``"met"`` ...).
        fields: ``layer/field`` names encoded, in order; ``feature_mean``/``feature_std`` their
            fitted standardisation (see :class:`~treasure_hf.tokenization.features.FeatureScaler`).
        method: ``vq`` (one codebook, EMA updates, k-means init, dead-code restart, commitment loss),
            ``rvq`` (``num_stages`` residual codebooks), ``pq`` (latent split into ``num_stages``
            sub-vectors, one codebook each) or ``fsq`` (finite scalar quantization, ``num_stages``
            codebooks of ``fsq_levels``).
        codebook_size: codes per stage (for FSQ, the product of ``fsq_levels``).
        num_stages: tokens per object: 1 for ``vq``, stages for ``rvq``, groups for ``pq``/``fsq``.
        latent_dim: size of the encoder output that is quantized.
        encoder_type: ``mlp`` (each object alone), ``transformer`` (objects of the event, in
            context) or ``identity`` (no network: the codebooks quantize the standardised features,
            weighted as the loss weights them; ``latent_dim`` becomes their number, padded to a
            multiple of the PQ groups). With ``identity``, RVQ is residual k-means: its error
            falls geometrically with the stages, where an MLP autoencoder's levels off at the
            networks' precision.
        pt_loss_weight: weight of the reconstruction error of ``log``-transformed columns (pT)
            against 1 for the others: spends more of the code's bits on pT.
    """

    model_type = "treasure_object_quantizer"

    def __init__(
        self,
        object_type: str = "jets",
        fields: list[str] | None = None,
        feature_mean: list[float] | None = None,
        feature_std: list[float] | None = None,
        method: str = "rvq",
        codebook_size: int = 1024,
        num_stages: int = 3,
        latent_dim: int = 12,
        hidden_size: int = 128,
        num_hidden_layers: int = 2,
        encoder_type: str = "mlp",
        num_attention_heads: int = 4,
        commitment_weight: float = 0.25,
        ema_decay: float = 0.9,
        kmeans_init: bool = True,
        dead_code_threshold: float = 1.0,
        fsq_levels: list[int] | None = None,
        pt_loss_weight: float = 1.0,
        **kwargs: Any,
    ):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        if encoder_type not in ENCODERS:
            raise ValueError(f"encoder_type must be one of {ENCODERS}, not {encoder_type!r}")
        self.object_type = object_type
        self.fields = list(fields or [])
        self.feature_mean = list(feature_mean or [])
        self.feature_std = list(feature_std or [])
        self.method = method
        self.num_stages = 1 if method == "vq" else int(num_stages)
        if method == "pq" and latent_dim % self.num_stages:
            latent_dim = (latent_dim // self.num_stages + 1) * self.num_stages
        self.latent_dim = latent_dim
        if method == "fsq":
            self.fsq_levels = list(fsq_levels or fsq_levels_for(codebook_size))
            codebook_size = int(math.prod(self.fsq_levels))
        else:
            self.fsq_levels = None
        self.codebook_size = int(codebook_size)
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.encoder_type = encoder_type
        self.num_attention_heads = num_attention_heads
        self.commitment_weight = commitment_weight
        self.ema_decay = ema_decay
        self.kmeans_init = kmeans_init
        self.dead_code_threshold = dead_code_threshold
        self.pt_loss_weight = float(pt_loss_weight)
        super().__init__(**kwargs)
