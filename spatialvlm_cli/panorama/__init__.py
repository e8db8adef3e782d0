"""Panorama VLMs: equirectangular geometry, view cutting, PanoRoPE position ids, model loading and inference.

Import from the modules: `pipeline` (PanoramaRequest, run_panorama), `source` (which model, checked without
loading), `models` (load_panorama_model), `image` (read_panorama), `families`, `positions`, `position_ids`, `presets`,
`report`, `pano_presets` (the `--pano_preset` set-ups, e.g. panollava's) and `questions` (many panoramas per run).
The package itself re-exports nothing, so `infer`'s flag checks (`pipeline`, `source`, `image`, `pano_presets`,
`questions`) load no torch or transformers; `models`, `presets`, `processing`, `position_ids` and `report` import
them at the top.

    from spatialvlm_cli.panorama.image import read_panorama
    from spatialvlm_cli.panorama.models import load_panorama_model
    from spatialvlm_cli.panorama.pipeline import PanoramaRequest, run_panorama

    loaded = load_panorama_model("tiny-internvl")                # or a checkpoint folder / hub id
    request = PanoramaRequest(views=4, overlap=0.2, vlm_pe="PanoRoPE_1D")
    result = run_panorama(loaded, read_panorama("scenes/pano_room.png"), request, GenerationSettings(greedy=True))
"""

from spatialvlm_cli.versions import warn_untested_versions

warn_untested_versions()  # one warning line per dependency outside its tested window
