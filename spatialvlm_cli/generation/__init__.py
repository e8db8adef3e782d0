"""Generation: sampling settings, streaming in a worker thread, batches of rows that stop on their own, the
endless-repeat guard."""

from spatialvlm_cli.generation.settings import GenerationSettings
from spatialvlm_cli.generation.stream import (
    GenerationResult,
    RepeatGuard,
    generate_batch,
    line_content,
    stream_generate,
)

__all__ = ["GenerationResult", "GenerationSettings", "RepeatGuard", "generate_batch", "line_content", "stream_generate"]
