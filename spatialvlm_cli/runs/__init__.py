"""Folder runs that last: the run manifest (what each scene's latest try came to) that resumes them and that the
ranks of a torchrun launch merge. No torch here."""

from spatialvlm_cli.runs.manifest import (
    FAILED,
    FAILED_LOG,
    MANIFEST_NAME,
    OK,
    ManifestEntry,
    ManifestPart,
    Merged,
    RunKey,
    merge_manifest,
    part_path,
    pe_description,
    pe_request,
    read_manifest,
    settings_hash,
)

__all__ = [
    "FAILED",
    "FAILED_LOG",
    "MANIFEST_NAME",
    "OK",
    "ManifestEntry",
    "ManifestPart",
    "Merged",
    "RunKey",
    "merge_manifest",
    "part_path",
    "pe_description",
    "pe_request",
    "read_manifest",
    "settings_hash",
]
