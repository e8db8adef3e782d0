"""Generation: sampling settings, streaming in a worker thread, the endless-repeat guard."""

from spatialvlm_cli.generation.settings import GenerationSettings
from spatialvlm_cli.generation.stream import GenerationResult, RepeatGuard, line_content, stream_generate

__all__ = ["GenerationResult", "GenerationSettings", "RepeatGuard", "line_content", "stream_generate"]
