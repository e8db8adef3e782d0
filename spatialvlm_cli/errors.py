"""Errors a user can act on. The CLI prints their message as one line on stderr and exits with code 1."""


class SpatialVLMError(Exception):
    """Base class: the message is a complete sentence for the user, no traceback needed."""


class InputError(SpatialVLMError):
    """An input file or folder is missing, unreadable or not what it claims to be."""


class ConfigError(SpatialVLMError):
    """A flag, YAML config or model config value is invalid."""


class UnknownPEVariant(ConfigError):
    """`--VLM_PE` or `--PCD_PE_Merge_Rule` names no registered variant."""


class ModelLoadError(SpatialVLMError):
    """A checkpoint directory, hub id or preset cannot be loaded."""


class OutputError(SpatialVLMError):
    """An output path cannot be written."""


def error_line(error: Exception) -> str:
    """One line for the user: a SpatialVLMError's message, else the first line of a library's error text (no
    class names: they mean nothing to a user)."""
    if isinstance(error, SpatialVLMError):
        return str(error)
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "no message")
    return f"unexpected failure: {first[:200]}"
