"""What a run trains: every weight, or parts frozen, or LoRA adapters on the decoder.

A SpatialLM-style model has four parameter groups, named by their top-level modules:

* `point_backbone`: the point encoder (Sonata or SceneScript);
* `projector`: `point_proj`, encoder features to the decoder's width;
* `decoder`: the language model (`model.*`: embeddings, layers, final norm; the LM head is tied or `lm_head.*`);
* the PE's learned parameters (`position_encoding.*`, e.g. MixedRoPE3D's frequencies), always trained: a new PE
  swapped onto a checkpoint starts from its initialisation and must learn.

`freeze` takes group names (SpatialLM's `freeze_point_tower` is `point_backbone`, its `train_proj_only` is
`point_backbone` + `decoder`). LoRA (`peft`, an optional extra) adds low-rank adapters to the decoder's attention
and MLP projections and freezes the decoder's own weights; the saved checkpoint has the adapters merged in, so it
loads like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from spatialvlm_cli.errors import ConfigError

FREEZABLE_GROUPS = ("point_backbone", "projector", "decoder")
_GROUP_OF_PREFIX = {"point_backbone": "point_backbone", "point_proj": "projector", "position_encoding": "pe"}
# The decoder's attention and MLP projections, the layers LoRA adapts (Qwen2 and Llama name them alike).
LORA_TARGETS = r".*\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


def parameter_group(name: str) -> str:
    """'point_backbone' | 'projector' | 'pe' | 'decoder' for a parameter name of the model."""
    return _GROUP_OF_PREFIX.get(name.split(".", 1)[0], "decoder")


def check_freeze(groups: Sequence[str]) -> None:
    """Raise ConfigError for a group name that cannot be frozen."""
    unknown = sorted(set(groups) - set(FREEZABLE_GROUPS))
    if unknown:
        raise ConfigError(f"cannot freeze {', '.join(unknown)}: the groups are {', '.join(FREEZABLE_GROUPS)}")


def add_lora(model: nn.Module, rank: int, alpha: float, dropout: float) -> None:
    """Insert LoRA adapters into the decoder's projections of `model`, in place: rank r, output scale alpha / r,
    dropout on the adapters' input; B starts at zero, so the model's output is unchanged. Raises ConfigError when
    peft is not installed."""
    try:
        from peft import LoraConfig, inject_adapter_in_model  # optional extra: only LoRA runs need it
    except ImportError:
        raise ConfigError("LoRA needs peft: pip install 'spatialvlm[lora]'") from None
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS)
    inject_adapter_in_model(config, model)


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRA adapter into its base layer (W + scale * B A) and put the base layer back in its place, so
    the model's modules and state-dict names are those of the model before `add_lora`."""
    from peft.tuners.lora import LoraLayer  # optional extra; only called after add_lora succeeded

    adapted = [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    for name, module in adapted:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.get_base_layer())


def set_trainable(model: nn.Module, freeze: Sequence[str], lora: bool) -> list[str]:
    """Mark what trains: everything but the frozen groups; with LoRA, the adapters instead of the decoder's own
    weights. PE parameters always train. Returns the names of the trainable parameters."""
    check_freeze(freeze)
    trainable = []
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.requires_grad = True
        else:
            group = parameter_group(name)
            parameter.requires_grad = group == "pe" or (group not in freeze and not (lora and group == "decoder"))
        if parameter.requires_grad:
            trainable.append(name)
    return trainable
