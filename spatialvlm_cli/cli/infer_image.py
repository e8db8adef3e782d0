"""`spatialvlm infer --image`: a panorama VLM answers a prompt about an equirectangular panorama, or every question
of a folder / .jsonl file of panoramas (one answers.jsonl for `eval --task vqa|caption`).

The `infer` command (cli/infer.py) turns the flags into a `PanoramaRun` and calls `infer_image`; the library is
`spatialvlm_cli.panorama`. Order of work: flags and the image are checked and the output folder is probed before
the model is loaded, so bad input fails in a second; then the text streams to stdout and the JSON is written
atomically (nothing is written when anything fails).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spatialvlm_cli.panorama.models import LoadedPanoramaModel
    from spatialvlm_cli.panorama.pipeline import PanoramaRequest, PanoramaRun


def panorama_request(values: Mapping[str, Any]) -> PanoramaRequest:
    """The request `infer --image`'s flags ask for: `values` holds prompt, VLM_PE (as typed), views, overlap, fov,
    global_view, pano_mode, id_overlap and pano_preset. With --pano_preset the preset sets the geometry and id
    flags; one of them given a value other than its default and the preset's is a ConfigError, and --VLM_PE may be
    None (native ids) or the preset's encoding. Torch-free (checked before a model loads)."""
    from spatialvlm_cli.flags import parse_vlm_pe
    from spatialvlm_cli.panorama.pano_presets import PRESET_FLAGS, read_pano_preset, request_with_preset
    from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT, PanoramaRequest

    prompt = DEFAULT_PROMPT if values["prompt"] is None else values["prompt"]
    vlm_pe = parse_vlm_pe(values["vlm_pe"])
    if values["pano_preset"] is not None:
        preset = read_pano_preset(values["pano_preset"])
        return request_with_preset(preset, {flag: values[flag] for flag in PRESET_FLAGS}, prompt, vlm_pe)
    return PanoramaRequest(prompt=prompt, views=values["views"], overlap=values["overlap"], fov_deg=values["fov"],
                           global_view=values["global_view"], vlm_pe=vlm_pe, pano_mode=values["pano_mode"],
                           id_overlap=values["id_overlap"])


def output_path_for(image: Path, output: Path | None) -> Path:
    """Where the JSON goes: `output` itself when it ends in .json, `output/<image stem>.json` for any other path
    (a folder), `./<image stem>.json` when None (the `infer` command passes ./layouts when --output is not given,
    as for point clouds)."""
    name = f"{Path(image).stem}.json"
    if output is None:
        return Path.cwd() / name
    output = Path(output)
    return output if output.suffix.lower() == ".json" else output / name


def written_for(path: Path, image: Path) -> bool:
    """True when `path` is a JSON file `infer --image` wrote for `image`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(document, dict) and "positions" in document and isinstance(document.get("image"), str)
            and Path(document["image"]).resolve() == Path(image).resolve())


def infer_image(run: PanoramaRun) -> None:
    """Run one panorama through a VLM; stream the answer to stdout and write the JSON result (see `PanoramaRun`).
    A folder or a .jsonl file as `run.image` asks many questions (`infer_images`).

    The model source, its family against --VLM_PE, the image and the output location are checked before the model
    loads. Raises InputError / ConfigError / ModelLoadError / OutputError with a one-line message."""
    from spatialvlm_cli.cli.console import terminal
    from spatialvlm_cli.io import check_output_location, check_overwrite, write_text_atomic
    from spatialvlm_cli.panorama.image import read_panorama
    from spatialvlm_cli.panorama.pipeline import result_json, run_panorama
    from spatialvlm_cli.panorama.questions import is_batch_source

    if is_batch_source(run.image):
        infer_images(run)
        return
    err = terminal.err
    request, generation = run.request, run.generation
    spec = _checked_model(run)
    panorama = read_panorama(run.image)
    target = output_path_for(run.image, run.output)
    check_output_location(target)
    replaced = check_overwrite([target], [run.image], run.overwrite, lambda path: written_for(path, run.image))
    loaded = _load(run, spec)
    result = run_panorama(loaded, panorama, request, generation, on_text=terminal.stream)
    terminal.end_line()
    document = result_json(result, panorama, request, loaded)
    document["image"] = str(Path(run.image).resolve())  # absolute: `written_for` must find it from any working folder
    document["settings"] = {**generation.to_json(), "device": str(loaded.model.device),
                            "dtype": str(loaded.model.dtype), "attn_implementation": run.attn_implementation}
    write_text_atomic(target, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    collisions = result.positions["collisions"]
    again = " (replacing an earlier run's file)" if replaced else ""
    err.print(
        f"[green]wrote[/] {target}{again} "
        f"({result.prompt_tokens} prompt tokens, {result.num_new_tokens} new tokens, "
        f"{result.seconds:.1f} s{f', {collisions} text/image id collisions' if collisions else ''})"
    )


def infer_images(run: PanoramaRun) -> None:
    """Ask every question of a folder or .jsonl file (`panorama/questions.py`) with one loaded model: each answer
    streams to stdout under a `[i/n] image: question` line on stderr; all answers go, atomically at the end, to one
    JSONL file (`--output` ending in .jsonl, else `<output>/answers.jsonl`) that `eval --task vqa|caption` reads:
    per line id, image (absolute), question, text, model, vlm_pe, pano_mode, pano_preset and token counts."""
    from dataclasses import replace

    from rich.markup import escape

    from spatialvlm_cli.cli.console import terminal
    from spatialvlm_cli.io import check_output_location, check_overwrite, write_text_atomic
    from spatialvlm_cli.panorama.image import read_panorama
    from spatialvlm_cli.panorama.pipeline import DEFAULT_PROMPT, run_panorama
    from spatialvlm_cli.panorama.questions import answers_path_for, read_questions, written_answers

    err = terminal.err
    request = run.request
    spec = _checked_model(run)
    questions = read_questions(run.image, None if request.prompt == DEFAULT_PROMPT else request.prompt)
    target = answers_path_for(run.output)
    check_output_location(target)
    inputs = [run.image, *dict.fromkeys(question.image for question in questions)]
    replaced = check_overwrite([target], inputs, run.overwrite, written_answers)
    loaded = _load(run, spec)
    records = []
    panorama = None
    for index, question in enumerate(questions, start=1):
        if panorama is None or panorama.source != question.image:
            panorama = read_panorama(question.image)
        err.print(f"[{index}/{len(questions)}] {escape(question.image.name)}: {escape(question.question)}")
        result = run_panorama(loaded, panorama, replace(request, prompt=question.question), run.generation,
                              on_text=terminal.stream)
        terminal.end_line()
        records.append({"id": question.id, "image": str(question.image.resolve()), "question": question.question,
                        "text": result.text, "model": loaded.spec, "vlm_pe": request.vlm_pe or "None",
                        "pano_mode": request.pano_mode if request.vlm_pe else None, "pano_preset": request.preset,
                        "prompt_tokens": result.prompt_tokens, "num_new_tokens": result.num_new_tokens,
                        "seconds": round(result.seconds, 3)})
    write_text_atomic(target, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    again = " (replacing an earlier run's file)" if replaced else ""
    err.print(f"[green]wrote[/] {target}{again} ({len(records)} answers)")


def _checked_model(run: PanoramaRun) -> str:
    """The model spec to load, checked (source, and its family against --VLM_PE when known) without loading."""
    from spatialvlm_cli.panorama.source import DEFAULT_PANORAMA_MODEL, model_source, peek_family

    spec = run.model or DEFAULT_PANORAMA_MODEL
    model_source(spec)
    family = peek_family(spec)
    if family is not None:
        run.request.check_family(family)
    return spec


def _load(run: PanoramaRun, spec: str) -> LoadedPanoramaModel:
    """Load the model (after every check), warn about random weights, say how the panorama is sent."""
    from spatialvlm_cli.cli.console import terminal
    from spatialvlm_cli.panorama.models import load_panorama_model  # torch and transformers: after the checks

    err, request = terminal.err, run.request
    with err.status(f"loading {spec} …"):
        loaded = load_panorama_model(spec, device=run.device, dtype=run.dtype,
                                     attn_implementation=run.attn_implementation)
    if loaded.random_weights:
        err.print(f"[bold yellow]warning:[/] '{spec}' is a preset with RANDOM weights: its output is meaningless")
    err.print(
        f"{len(request.layout.tiles)} view(s){' + global view' if request.layout.global_view else ''}, "
        f"--VLM_PE {request.vlm_pe or 'None'}"
        f"{f' ({request.pano_mode}, id overlap {request.ids_overlap:.4g})' if request.vlm_pe else ''}"
        f"{f', --pano_preset {request.preset}' if request.preset else ''}"
    )
    return loaded
