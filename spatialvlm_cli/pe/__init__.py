"""Positional encodings for point tokens (`--VLM_PE`, `--PCD_PE_Merge_Rule`) on Qwen2 / Llama language models.

Variants (PE_REGISTRY): "None" (stock 1-D RoPE; any case, or Python None), "3D_RoPE", "MixedRoPE3D",
"3D_Sinusoidal"; merge rules "3D_only" and "3D_with_1D". Unknown names raise UnknownPEVariant; options the model
cannot take (odd head_dim, a pair split that does not add up, unknown keys) raise ConfigError when built.

Contract with the model (SpatialLM-style `...ForCausalLM` whose decoder uses `spatialvlm_cli.model.attention`):

    # __init__ (also runs inside from_pretrained):
    self.position_encoding = build_position_encoding(**config.pe, lm_config=config)
    #   `position_encoding` is the attribute name: learned parameters (MixedRoPE3D) are saved as
    #   `position_encoding.layers.<l>.freqs_3d_kv` etc. In `_init_weights(module)` call
    #   `module.reset_parameters()` when `isinstance(module, LearnedParameters)`, and list "position_encoding" in
    #   `_keep_in_fp32_modules` so learned frequencies stay float32 in bf16 models.

    # forward, prefill with point tokens (point tokens already scattered into inputs_embeds):
    positions = PointPositions.from_point_blocks(point_mask, coords_per_sample, attention_mask)
    inputs_embeds = self.position_encoding.embed_points(inputs_embeds, positions)   # identity unless 3D_Sinusoidal
    cos, sin = decoder.rotary_emb(inputs_embeds, positions.position_ids)             # the stock tables
    rotary = self.position_encoding.point_rotary(cos, sin, positions, scaling)
    out = decoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=positions.position_ids,
                  point_rotary=rotary, ...)                                         # reaches every attention layer

    # decode steps and text-only forwards: a plain call, stock 1-D RoPE. generate() continues position_ids at
    # last + 1 per row, which is right because point tokens take ordinary sequential ids.

Coordinates are grid cells of the encoder's output tokens (one row per point token); `positions.py` documents
how they are normalised. For a no-cache recomputation pass an explicit 2-D attention mask (transformers otherwise
treats any jump in position_ids as packed sequences).

Checkpoints of the fork (MixedRoPE3D with per-layer `self_attn.freqs_3d_q` etc.) load with
`from_pretrained(..., key_mapping=mixed_rope3d.fork_key_mapping())`. The fork's hyper-parameters: `fork_options(name)`.
"""

from spatialvlm_cli.pe import mixed_rope3d, rope3d, sinusoidal3d, stock  # noqa: F401 - registers the variants
from spatialvlm_cli.pe.allocation import LAYOUTS, MERGE_RULES, PairAllocation, allocate_pairs
from spatialvlm_cli.pe.apply import QKTable, apply_rotary
from spatialvlm_cli.pe.base import (
    LayerwiseTables,
    LearnedParameters,
    PointRotary,
    PositionEncoding,
    RotaryPositionEncoding,
)
from spatialvlm_cli.pe.options import PEOptions
from spatialvlm_cli.pe.positions import COORD_UNITS, PointPositions, normalize_coords, sequential_position_ids
from spatialvlm_cli.pe.registry import NO_PE, PE_REGISTRY, register
from spatialvlm_cli.pe.spec import (
    KEEP,
    PESpec,
    build_position_encoding,
    fork_options,
    merge_rule_name,
    variant_name,
)

__all__ = [
    "COORD_UNITS",
    "KEEP",
    "LAYOUTS",
    "MERGE_RULES",
    "NO_PE",
    "PE_REGISTRY",
    "LayerwiseTables",
    "LearnedParameters",
    "PEOptions",
    "PESpec",
    "PairAllocation",
    "PointPositions",
    "PointRotary",
    "PositionEncoding",
    "QKTable",
    "RotaryPositionEncoding",
    "allocate_pairs",
    "apply_rotary",
    "build_position_encoding",
    "fork_options",
    "merge_rule_name",
    "normalize_coords",
    "register",
    "sequential_position_ids",
    "variant_name",
]
