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
