"""Option spellings shared by several commands, and the help layout that groups a command's options under
headings. The design card's spellings come first; kebab-case aliases follow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # typer vendors click (0.29)


class PanelledCommand(TyperCommand):
    """A command whose help lists its options under their `rich_help_panel` headings, in the order the headings
    first appear (options without one under "Options"). The app prints help as plain text
    (`rich_markup_mode=None`: flag names are never cut at 80 columns), where typer lists every option under one
    "Options" heading."""

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                default = "Arguments" if param.param_type_name == "argument" else "Options"
                sections.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
        for heading, records in sections.items():
            with formatter.section(heading):
                formatter.write_dl(records)


MODEL_PANEL = "Model and PE"  # the help heading of the model, positional-encoding and device flags

# plot, view and export: the layout they read, a ground truth beside it, replacing a file they did not write.
LayoutFileOpt = Annotated[
    Path | None,
    typer.Option("--layout", "-l", help="The layout: SpatialLM text (.txt) or infer's .json (required)."),
]
GroundTruthOpt = Annotated[Path | None, typer.Option("--gt", help="A ground-truth layout shown too, in blue.")]
OverwriteOutputOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing --output this command did not write.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file of flag: value pairs; flags given on the command line win."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        rich_help_panel=MODEL_PANEL,
        help="Checkpoint directory, hub id, shipped model or preset name. Point clouds: spatialvlm-rooms (the "
        "default, trained on synthetic rooms), manycore-research/SpatialLM1.1-Qwen-0.5B, tiny-qwen, tiny-llama. "
        "Images: tiny-internvl, tiny-gemma3, tiny-qwen2.5-vl, tiny-qwen3-vl (default OpenGVLab/InternVL3_5-1B-HF).",
    ),
]
VlmPeOpt = Annotated[
    str | None,
    typer.Option(
        "--VLM_PE",
        "--vlm-pe",
        "--vlm_pe",
        rich_help_panel=MODEL_PANEL,
        help="Positional encoding: None (stock 1-D RoPE), 3D_RoPE, MixedRoPE3D, 3D_Sinusoidal; "
        "images: PanoRoPE_1D (InternVL3.5, Gemma3), PanoRoPE (Qwen-VL). Default: the checkpoint's.",
    ),
]
MergeRuleOpt = Annotated[
    str | None,
    typer.Option(
        "--PCD_PE_Merge_Rule",
        "--pcd-pe-merge-rule",
        "--pcd_pe_merge_rule",
        rich_help_panel=MODEL_PANEL,
        help="How 3-D positions share the head dimension: 3D_only or 3D_with_1D. Default: the checkpoint's.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | mps.", rich_help_panel=MODEL_PANEL)]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="auto (bfloat16 on CUDA, float32 elsewhere) | float32 | bfloat16 | float16.",
        rich_help_panel=MODEL_PANEL,
    ),
]


PeOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pe_option",
        "--pe-option",
        rich_help_panel=MODEL_PANEL,
        help="PE hyper-parameter KEY=VALUE (repeatable), e.g. --pe_option theta_3d=100 --pe_option layout=chunked.",
    ),
]

# The help heading of the panorama flags (`infer --image`).
PANORAMA_PANEL = "Panorama"
IdOverlapOpt = Annotated[
    float | None,
    typer.Option(
        "--id_overlap",
        "--id-overlap",
        rich_help_panel=PANORAMA_PANEL,
        help="Overlap ratio the PanoRoPE ids use, [0, 1) (panollava's overlap_ratio); default: the views' column "
        "overlap (--overlap).",
    ),
]
PanoPresetOpt = Annotated[
    str | None,
    typer.Option(
        "--pano_preset",
        "--pano-preset",
        rich_help_panel=PANORAMA_PANEL,
        help="A named panorama set-up (views, fov, conventions, id scheme) or its YAML file: panollava-internvl, "
        "panollava-gemma3, panollava-qwen2.5-vl, ... (reproduce wooseungw/panollava's published configs).",
    ),
]
