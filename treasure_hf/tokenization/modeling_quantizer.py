"""One object type's tokenizer network: encoder -> codebooks -> decoder, a ``PreTrainedModel``
(``config.json`` + ``model.safetensors``), in the pattern of EnCodec and DAC in transformers.

Each method's quantizer is reached through its adapter (:mod:`.quantizer_methods`). Training
uses vector-quantize-pytorch's quantizers (EMA codebook updates, k-means
initialisation, dead-code restart, commitment loss) and our own FSQ (:mod:`.fsq`). Inference (:meth:`ObjectQuantizer.tokenize`)
uses :func:`~treasure_hf.tokenization.lookup.nearest_code`: on the CPU an exact compiled kernel
that never writes the score matrix (about 60% of the machine's sgemm rate, an order of magnitude
above the library's lookup), on CUDA a chunked matmul + argmin (see ``benchmarks/tokenization.py``).

Shapes: ``features`` (batch, objects, n_columns), ``mask`` (batch, objects) True for real
objects, ``codes`` (batch, objects, num_stages) int64 in ``[0, codebook_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_quantizer import ObjectQuantizerConfig
from .features import FeatureScaler
from .quantizer_methods import ADAPTERS


@dataclass
class QuantizerOutput(ModelOutput):
    """``loss`` = reconstruction MSE + commitment loss; ``reconstruction`` (batch, objects, n_columns);
    ``codes`` (batch, objects, num_stages); masked positions hold zeros."""

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None


def _mlp(n_in: int, hidden: int, n_out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Linear(n_in, hidden), nn.GELU()]
    for _ in range(layers - 1):
        mods += [nn.Linear(hidden, hidden), nn.GELU()]
    mods.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*mods)


class ColumnScaling(nn.Module):
    """The ``identity`` encoder (and, with ``inverse``, its decoder): the latent is the standardised
    features themselves, column c scaled by sqrt(weight_c) (so that the codebooks' Euclidean
    distance is the weighted reconstruction error) and zero-padded to ``latent_dim``. No
    parameters: the codebooks alone are learned (residual k-means with EMA updates), and the
    reconstruction error falls with every stage, with no network's precision as a floor."""

    def __init__(self, weights: list[float], latent_dim: int, inverse: bool = False):
        super().__init__()
        self.weights, self.latent_dim, self.inverse = [float(w) for w in weights], int(latent_dim), inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor(self.weights, dtype=x.dtype, device=x.device).sqrt()
        if self.inverse:
            return x[..., : len(self.weights)] / scale
        return nn.functional.pad(x * scale, (0, self.latent_dim - len(self.weights)))


def identity_latent_dim(n_columns: int, method: str, num_stages: int) -> int:
    """Latent width of the ``identity`` encoder: the columns, padded to a multiple of the PQ groups."""
    return -(-n_columns // num_stages) * num_stages if method == "pq" else n_columns


class ObjectEncoder(nn.Module):
    """Features -> latent. ``mlp``: each object alone; ``transformer``: a small transformer over the
    objects of the same event (in context), padding masked; ``identity``: :class:`ColumnScaling`."""

    def __init__(self, config: ObjectQuantizerConfig, n_columns: int, column_weights: list[float]):
        super().__init__()
        self.kind = config.encoder_type
        if self.kind == "identity":
            self.net = ColumnScaling(column_weights, config.latent_dim)
        elif self.kind == "mlp":
            self.net = _mlp(n_columns, config.hidden_size, config.latent_dim, config.num_hidden_layers)
        else:
            self.proj_in = nn.Linear(n_columns, config.hidden_size)
            layer = nn.TransformerEncoderLayer(
                config.hidden_size,
                config.num_attention_heads,
                dim_feedforward=2 * config.hidden_size,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
            self.net = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False)
            self.proj_out = nn.Linear(config.hidden_size, config.latent_dim)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind != "transformer":
            return self.net(features)
        h = self.net(self.proj_in(features), src_key_padding_mask=~mask)
        return self.proj_out(h)


class ObjectQuantizer(PreTrainedModel):
    """Encoder, quantizer and decoder of one object type; see the module docstring for shapes."""

    config_class = ObjectQuantizerConfig
    base_model_prefix = "object_quantizer"
    main_input_name = "features"

    def __init__(self, config: ObjectQuantizerConfig):
        super().__init__(config)
        self.scaler = FeatureScaler(config.object_type, config.fields, config.feature_mean, config.feature_std)
        n_columns = self.scaler.n_columns
        self._column_weights = [config.pt_loss_weight if t == "log" else 1.0 for t in self.scaler.column_transforms()]
        if config.encoder_type == "identity":
            config.latent_dim = identity_latent_dim(n_columns, config.method, config.num_stages)
        self.encoder = ObjectEncoder(config, n_columns, self._column_weights)
        self._method = ADAPTERS[config.method]
        self.quantizer = self._method.build(config)
        if config.encoder_type == "identity":
            self.decoder = ColumnScaling(self._column_weights, config.latent_dim, inverse=True)
        else:
            self.decoder = _mlp(config.latent_dim, config.hidden_size, n_columns, config.num_hidden_layers)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Keep PyTorch's default initialisation (and the library's codebook initialisation)."""

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the weights, or of the codebooks where there is no parameter
        (``identity`` encoder with VQ, RVQ or PQ)."""
        return next(
            (t.dtype for t in (*self.parameters(), *self.buffers()) if t.is_floating_point()), torch.get_default_dtype()
        )

    @property
    def column_weights(self) -> list[float]:
        """Weight of each column in the reconstruction loss (``pt_loss_weight`` for pT, 1 otherwise)."""
        return list(self._column_weights)

    @property
    def device(self) -> torch.device:
        return next((t.device for t in (*self.parameters(), *self.buffers())), torch.device("cpu"))

    # --- training ------------------------------------------------------------------------------
    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        z = self.encoder(features, mask)
        # Only real objects reach the codebooks (EMA statistics, k-means init, dead-code restart).
        real = z[mask].unsqueeze(0)
        real_q, real_codes, commit = self._method.quantize(self.quantizer, real)
        zq = torch.zeros_like(z).masked_scatter(mask.unsqueeze(-1), real_q.reshape(-1, z.shape[-1]).to(z.dtype))
        codes = torch.zeros((*mask.shape, real_codes.shape[-1]), dtype=torch.long, device=z.device)
        codes[mask] = real_codes.long()
        recon = self.decoder(zq)
        m = mask.unsqueeze(-1).to(recon.dtype)
        w = torch.tensor(self._column_weights, dtype=recon.dtype, device=recon.device)
        recon_loss = (((recon - features) ** 2) * w * m).sum() / (m.sum() * w.sum()).clamp_min(1e-12)
        return QuantizerOutput(
            loss=recon_loss + commit,
            reconstruction=recon * m,
            codes=codes,
            reconstruction_loss=recon_loss.detach(),
            commitment_loss=commit.detach(),
        )

    # --- inference -----------------------------------------------------------------------------
    def codebooks(self) -> list[torch.Tensor]:
        """The codebook of each stage: (codebook_size, dim) tensors (not for FSQ, which has none)."""
        return self._method.codebooks(self.quantizer)

    @torch.no_grad()
    def tokenize(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Codes of every object, (batch, objects, num_stages), by nearest-code lookup."""
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        z = self.encoder(features, mask)
        codes = self._method.tokenize(self.quantizer, z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], -1)
        return codes.masked_fill(~mask.unsqueeze(-1), 0)

    @torch.no_grad()
    def latent_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., num_stages) codes -> (..., latent_dim) quantized latent."""
        return self._method.latent_from_codes(self.quantizer, codes)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., num_stages) codes -> (..., n_columns) standardised features."""
        return self.decoder(self.latent_from_codes(codes))
