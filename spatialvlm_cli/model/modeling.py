"""SpatialLM-style causal LMs: a Qwen2/Llama decoder reading point-cloud tokens from a sparse point encoder.

Checkpoint layout (as SpatialLM's): `model.*` decoder, `lm_head`, `point_backbone.*` encoder (kept in float32),
`point_proj` projector into the decoder's hidden size (run in the decoder's dtype).

Unlike SpatialLM, which splices M point features in place of one placeholder inside `forward`, the processor writes
exactly M `<|point_pad|>` ids per cloud and `forward` only `masked_scatter`s the features over them. Ids, attention
mask, position ids and KV cache then have one length, so generate()'s bookkeeping (left padding, decode positions,
cache) is right with no correction.

The decoder's layers use our own attention (`spatialvlm_cli.model.attention`): a prefill with point tokens hands
them the positional encoding's tables as `point_rotary`; everything else runs the stock rotation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from transformers import LlamaForCausalLM, Qwen2ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from spatialvlm_cli import transformers_seam
from spatialvlm_cli.encoders import build_point_encoder
from spatialvlm_cli.errors import ConfigError, InputError
from spatialvlm_cli.generation.kv_cache import growing_cache
from spatialvlm_cli.model.attention import point_rotary_for, use_point_attention
from spatialvlm_cli.model.config import SpatialLMLlamaConfig, SpatialLMQwenConfig
from spatialvlm_cli.model.points import (
    default_position_ids,
    pad_point_clouds,
    point_token_mask,
    split_point_clouds,
)
from spatialvlm_cli.pe import PointPositions

if TYPE_CHECKING:
    from transformers import Cache
    from transformers.utils import ModelOutput

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


def build_projector(kind: str, in_channels: int, hidden_size: int) -> nn.Module:
    """SpatialLM's projector: 'linear' Linear(C, hidden); 'mlp' Sequential(Linear(C, C), GELU, Linear(C, hidden))."""
    if kind == "linear":
        return nn.Linear(in_channels, hidden_size)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_channels, in_channels), nn.GELU(), nn.Linear(in_channels, hidden_size))
    raise ConfigError(f"projector must be 'linear' or 'mlp', got '{kind}'")


class PointCloudLMMixin:
    """Point encoder, projector, point-token insertion and generation plumbing shared by Qwen2 and Llama."""

    # The float32 rule, stated once: the encoder and learned PE frequencies stay float32 whatever the decoder's
    # dtype (as SpatialLM's). from_pretrained(dtype=...) and presets.cast_parameters read this list;
    # encode_point_clouds casts the encoder back after a blanket `model.to(dtype)`, which ignores it.
    _keep_in_fp32_modules_strict = ["point_backbone", "position_encoding"]  # noqa: RUF012

    def _init_point_modules(self, config: SpatialLMQwenConfig | SpatialLMLlamaConfig) -> None:
        for name in ("point_start_token_id", "point_end_token_id", "point_token_id"):
            if getattr(config, name) is None:
                raise ConfigError(f"the model config has no {name}")
        if not config.point_config or "num_bins" not in config.point_config:
            raise ConfigError("the model config's point_config must give num_bins")
        self.point_backbone = build_point_encoder(config.point_backbone, config.point_config)
        self.point_proj = build_projector(config.projector, self.point_backbone.out_channels, config.hidden_size)
        # Every model has a PositionEncoding; "None" (stock 1-D RoPE) hands the attention the stock tables.
        self.position_encoding = config.pe_spec.build(config)
        use_point_attention(self.model)

    @property
    def num_bins(self) -> int:
        """Input grid cells per axis over SpatialLM's 32 m world (1280 for SpatialLM 1.1)."""
        return int(self.config.point_config["num_bins"])

    def _init_weights(self, module: nn.Module) -> None:
        # Modules of our own (sparse convolutions, learned PE frequencies) own their init. from_pretrained builds
        # the model on the meta device and runs this for every module after loading: `reset_parameters` must use
        # torch.nn.init / transformers.initialization, which skip tensors marked as loaded, so checkpoint weights
        # survive and only missing ones (e.g. a PE swapped at load time) get initialised.
        super()._init_weights(module)
        if type(module).__module__.startswith("spatialvlm_cli.") and hasattr(module, "reset_parameters"):
            module.reset_parameters()

    def encode_point_clouds(self, clouds: list[Tensor], dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Run the encoder on a batch of clouds and project its tokens into the decoder's embedding space.

        clouds: B tensors (N_i, 9) float32 (see `split_point_clouds`).
        Returns features (M, hidden) in `dtype`, grid_coord (M, 3) int64 output-grid cells of every token, and
        counts (B,) int64 tokens per cloud; tokens are in cloud order, then the encoder's order."""
        parameter = next(self.point_backbone.parameters())
        if parameter.dtype != torch.float32:  # after a blanket `model.to(dtype)`: see _keep_in_fp32_modules_strict
            log.debug("casting the point encoder from %s to float32", parameter.dtype)
            self.point_backbone.float()
        device = parameter.device
        rows = torch.cat(clouds).to(device)
        grid_coord = rows[:, :3].long()  # integral floats; SpatialLM truncates with .int()
        feat = rows[:, 3:9]
        offset = torch.cumsum(torch.tensor([len(c) for c in clouds], device=device), dim=0)
        with torch.autocast(device_type=device.type, enabled=False):
            encoded = self.point_backbone(grid_coord, feat, offset)
        features = self.point_proj(encoded.features.to(dtype))
        counts = torch.diff(encoded.offset, prepend=encoded.offset.new_zeros(1))
        return features, encoded.grid_coord, counts

    def _point_positions(
        self, mask: Tensor, point_clouds: Tensor | list[Tensor], inputs_embeds: Tensor, position_ids: Tensor
    ) -> tuple[Tensor, PointPositions]:
        """Scatter the projected point features over the point-pad embeddings (mask: (B, S) bool, the point
        tokens) and describe every token's position for the PE: 1-D `position_ids` (B, S), the point mask and each
        point token's output-grid cell (B, S, 3)."""
        clouds = split_point_clouds(point_clouds)
        batch = mask.shape[0]
        if len(clouds) != batch:
            raise InputError(f"got {len(clouds)} point clouds for a batch of {batch} sequences")
        features, grid_coord, counts = self.encode_point_clouds(clouds, inputs_embeds.dtype)
        expected = mask.sum(dim=1).tolist()
        for row, (num_ids, num_tokens) in enumerate(zip(expected, counts.tolist(), strict=True)):
            if num_ids != num_tokens:
                raise InputError(
                    f"sequence {row} has {num_ids} <|point_pad|> ids but its point cloud encodes to {num_tokens} "
                    f"tokens; build input_ids with the model's processor for these point clouds"
                )
        # .to(dtype): under autocast the projector returns the autocast dtype, the embeddings stay float32.
        features = features.to(inputs_embeds.device, inputs_embeds.dtype)
        inputs_embeds = inputs_embeds.masked_scatter(mask.unsqueeze(-1), features)
        per_cloud = torch.split(grid_coord.to(inputs_embeds.device), counts.tolist())
        positions = PointPositions.from_point_blocks(mask.to(inputs_embeds.device), per_cloud,
                                                     position_ids=position_ids)
        return self.position_encoding.embed_points(inputs_embeds, positions), positions

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | Tensor = 0,
        point_clouds: Tensor | list[Tensor] | None = None,
        cache: Cache | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Decoder forward; at the prefill the encoder's tokens replace the `<|point_pad|>` ids.

        input_ids: (B, S) int64 with exactly M_i point-pad ids per row (see `SpatialLMProcessor`).
        attention_mask: (B, S_past + S) 0/1, left padding. position_ids: (B, S) int64; default as generate().
        point_clouds: list of B (N_i, 9) float32 rows, or (B, N, 9) padded with NaN rows; used when input_ids hold
        the point block (the prefill), ignored at decode steps. The KV cache comes as `cache` or
        `past_key_values` (transformers' name changed in 5.24); both are named parameters so that generate() accepts
        a cache the caller passes (it checks the forward's signature).
        Returns logits (B, S or logits_to_keep, vocab) and the KV cache."""
        cache = cache if cache is not None else past_key_values
        point_rotary = None
        mask = point_token_mask(input_ids, self.config) if point_clouds is not None and input_ids is not None else None
        if mask is not None and mask.any():
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            if position_ids is None:
                past = cache.get_seq_length() if cache is not None else 0
                batch, length = input_ids.shape
                position_ids = default_position_ids(attention_mask, past, batch, length, input_ids.device)
            inputs_embeds, positions = self._point_positions(mask, point_clouds, inputs_embeds, position_ids)
            point_rotary = point_rotary_for(self.model, self.position_encoding, inputs_embeds, positions)
            if labels is not None:
                labels = labels.masked_fill(mask, IGNORE_INDEX)
            input_ids = None
        elif point_clouds is not None and (cache is None or cache.get_seq_length() == 0):
            raise InputError("point_clouds were given but input_ids hold no <|point_start|> <|point_pad|>... block; "
                             "build input_ids with the model's processor")
        extra = {"point_rotary": point_rotary} if point_rotary is not None else {}
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **{transformers_seam.CACHE_ARGUMENT: cache},
            **extra,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return transformers_seam.causal_lm_output(loss, logits, transformers_seam.output_cache(outputs),
                                                  outputs.hidden_states, outputs.attentions)

    def prepare_inputs_for_generation(
        self, input_ids: Tensor, inputs_embeds: Tensor | None = None,
        point_clouds: Tensor | list[Tensor] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """generate()'s per-step inputs plus the point clouds; `forward` uses them only when the step's ids hold
        the point block (the prefill), so decode steps hit the cache."""
        model_inputs = super().prepare_inputs_for_generation(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        model_inputs["point_clouds"] = point_clouds
        return model_inputs

    def generate(self, *args: Any, point_clouds: Tensor | list[Tensor] | None = None,
                 **kwargs: Any) -> Tensor | ModelOutput:
        """transformers' generate with point clouds; a list of clouds becomes one NaN-padded (B, N, 9) tensor, which
        generate repeats with the rows for beam search and num_return_sequences. Unless the caller chose a cache (or
        none), the KV cache is a `growing_cache()`: no reallocation of the whole cache at every token."""
        if isinstance(point_clouds, (list, tuple)):
            point_clouds = pad_point_clouds(split_point_clouds(point_clouds))
        if self._default_cache_wanted(kwargs):
            kwargs[transformers_seam.CACHE_ARGUMENT] = growing_cache()
        return super().generate(*args, point_clouds=point_clouds, **kwargs)

    def _default_cache_wanted(self, kwargs: dict[str, Any]) -> bool:
        """True when generate would build its default dynamic cache: no cache, cache implementation or
        use_cache=False asked for, and full attention in every layer (a sliding window needs transformers' own)."""
        config = kwargs.get("generation_config") or self.generation_config
        chosen = any(name in kwargs for name in (*transformers_seam.CACHE_NAMES, "cache_implementation"))
        full_attention = all(kind == "full_attention" for kind in getattr(self.config, "layer_types", None) or ())
        return (not chosen and kwargs.get("use_cache", config.use_cache) is not False
                and config.cache_implementation is None and full_attention)


class SpatialLMQwenForCausalLM(PointCloudLMMixin, Qwen2ForCausalLM):
    """SpatialLM with a Qwen2 decoder (e.g. SpatialLM1.1-Qwen-0.5B)."""

    config_class = SpatialLMQwenConfig

    def __init__(self, config: SpatialLMQwenConfig) -> None:
        super().__init__(config)
        self._init_point_modules(config)
        self.post_init()


class SpatialLMLlamaForCausalLM(PointCloudLMMixin, LlamaForCausalLM):
    """SpatialLM with a Llama decoder (e.g. SpatialLM1.1-Llama-1B)."""

    config_class = SpatialLMLlamaConfig

    def __init__(self, config: SpatialLMLlamaConfig) -> None:
        super().__init__(config)
        self._init_point_modules(config)
        self.post_init()


SpatialLMModel = SpatialLMQwenForCausalLM | SpatialLMLlamaForCausalLM
"""Either SpatialLM-style model: what `load_spatiallm` builds."""
