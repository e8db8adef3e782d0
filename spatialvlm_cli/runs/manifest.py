"""The run manifest of a folder run: how each scene's latest try went, so that a rerun knows what is done.

OUTPUT/manifest.jsonl holds one JSON line per scene (its input's file name): status (ok, or failed with the error's
one line), the rank that ran it, the model, the PE flags asked for and the encoding that ran, the hash of the scene
settings, seconds and token counts. While a run goes on, each rank appends a line per finished scene to its own part,
OUTPUT/manifest.rank<R>.jsonl, so a killed run keeps every scene it finished. Rank 0 merges the parts into
manifest.jsonl (atomically, then removes them) at the start of a run, which picks up a killed run's parts, and at
its end; it also rewrites OUTPUT/failed.log, one `name<TAB>error` line per scene whose latest try failed.

A scene counts as done for a rerun (`--skip_existing`) only when its latest try is ok under the same `RunKey`: the
same model, the same PE flags and the same settings hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spatialvlm_cli.errors import OutputError
from spatialvlm_cli.flags import is_stock_spelling
from spatialvlm_cli.io import write_text_atomic

MANIFEST_NAME = "manifest.jsonl"
FAILED_LOG = "failed.log"
PART_GLOB = "manifest.rank*.jsonl"
OK = "ok"
FAILED = "failed"
CHECKPOINT_PE = "checkpoint"  # no PE flag given: the model runs the encoding its checkpoint was built with


def part_path(folder: Path, rank: int) -> Path:
    """Where rank `rank` appends its entries during a run."""
    return Path(folder) / f"manifest.rank{rank}.jsonl"


def settings_hash(settings: Mapping[str, Any]) -> str:
    """12 hex digits of the SHA-256 of `settings` as canonical JSON (sorted keys): equal settings, equal hash."""
    text = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def pe_request(vlm_pe: str | None, merge_rule: str | None, pe_options: Mapping[str, object]) -> str:
    """The PE flags of a run as one string, case and the stock spellings normalised: `checkpoint` when none is
    given, else e.g. `VLM_PE=3d_rope PCD_PE_Merge_Rule=3d_with_1d pe_option={"layout": "chunked"}`. Checked without
    loading a model, so `--VLM_PE None` on a stock-RoPE checkpoint differs from no flag (its scenes run again)."""
    if vlm_pe is None and merge_rule is None and not pe_options:
        return CHECKPOINT_PE
    name = CHECKPOINT_PE if vlm_pe is None else "none" if is_stock_spelling(vlm_pe) else vlm_pe.strip().lower()
    rule = CHECKPOINT_PE if merge_rule is None else merge_rule.strip().lower()
    options = json.dumps(dict(pe_options), sort_keys=True, default=str)
    return f"VLM_PE={name} PCD_PE_Merge_Rule={rule} pe_option={options}"


def pe_description(vlm_pe: str | None, merge_rule: str | None, options: Mapping[str, object]) -> str:
    """The encoding a model ran, as a manifest records it: `None`, or `<variant>/<merge rule>` and its options as
    JSON, e.g. `3D_RoPE/3D_only {"layout": "chunked", "theta_3d": 100.0}` (a model config's vlm_pe,
    pcd_pe_merge_rule and pe)."""
    if vlm_pe is None:
        return "None"
    text = f"{vlm_pe}/{merge_rule}"
    return f"{text} {json.dumps(dict(options), sort_keys=True, default=str)}" if options else text


@dataclass(frozen=True)
class RunKey:
    """What makes two tries of a scene the same run. model: as given, a local folder by its absolute path;
    pe_request: `pe_request(...)`; settings_hash: `settings_hash` of the scene settings (prompt, cleanup,
    generation)."""

    model: str
    pe_request: str
    settings_hash: str

    @classmethod
    def build(cls, model: str, vlm_pe: str | None, merge_rule: str | None, pe_options: Mapping[str, object],
              settings: Mapping[str, Any]) -> RunKey:
        local = Path(model).expanduser()
        spec = str(local.resolve()) if local.is_dir() else model
        return cls(spec, pe_request(vlm_pe, merge_rule, pe_options), settings_hash(settings))


@dataclass(frozen=True)
class ManifestEntry:
    """One try of one scene. scene: the input's file name; status: ok | failed; error: the failure's one line
    (None when ok); pe: the encoding that ran (`<variant>/<merge rule>` or None, and its options); seconds: wall
    time of the scene (reading, preprocessing, generation; in a batch, an equal share of the batch's generation);
    point_tokens / new_tokens: None when it failed; finished: UTC time, ISO 8601."""

    scene: str
    status: str
    error: str | None
    rank: int
    model: str
    pe_request: str
    pe: str
    settings_hash: str
    seconds: float
    point_tokens: int | None
    new_tokens: int | None
    device: str
    finished: str

    @property
    def key(self) -> RunKey:
        return RunKey(self.model, self.pe_request, self.settings_hash)

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False) + "\n"

    @classmethod
    def from_line(cls, line: str) -> ManifestEntry:
        """ValueError unless `line` is an entry `to_line` wrote."""
        payload = json.loads(line)
        names = [item.name for item in fields(cls)]
        if not isinstance(payload, dict) or set(payload) != set(names) or payload["status"] not in (OK, FAILED):
            raise ValueError("not a manifest entry")
        return cls(**payload)


class ManifestPart:
    """This rank's part of the manifest: one line appended per finished scene, written in one call, so a killed run
    leaves at most its last line cut off (readers skip it). key / pe / device: the run's, the same for every
    scene."""

    def __init__(self, folder: Path, rank: int, key: RunKey, pe: str, device: str) -> None:
        self.path = part_path(folder, rank)
        self.rank = rank
        self.key = key
        self.pe = pe
        self.device = device

    def record(self, source: Path, seconds: float, point_tokens: int | None = None, new_tokens: int | None = None,
               error: str | None = None) -> ManifestEntry:
        """Append the entry of scene `source`: ok when `error` is None, else failed with that line."""
        entry = ManifestEntry(
            scene=Path(source).name, status=OK if error is None else FAILED, error=error, rank=self.rank,
            model=self.key.model, pe_request=self.key.pe_request, pe=self.pe, settings_hash=self.key.settings_hash,
            seconds=round(seconds, 3), point_tokens=point_tokens, new_tokens=new_tokens, device=self.device,
            finished=datetime.now(timezone.utc).isoformat(timespec="microseconds"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(entry.to_line())
        except OSError as error:
            raise OutputError(f"cannot write '{self.path}': {error.strerror or error}") from None
        return entry


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise OutputError(f"cannot read '{path}': {error.strerror or error}") from None


def _manifest_entries(path: Path) -> list[ManifestEntry]:
    """The entries of a merged manifest; OutputError when the file is not one this tool wrote."""
    try:
        return [ManifestEntry.from_line(line) for line in _read_lines(path) if line.strip()]
    except (ValueError, TypeError):
        raise OutputError(f"'{path}' is not a spatialvlm run manifest; move it away or choose another --output") \
            from None


def _part_entries(path: Path) -> list[ManifestEntry]:
    """The entries of a part; a line that does not read (cut off when its run was killed) is left out."""
    entries = []
    for line in _read_lines(path):
        try:
            entries.append(ManifestEntry.from_line(line))
        except (ValueError, TypeError):
            continue
    return entries


def _latest(entries: Iterable[ManifestEntry]) -> dict[str, ManifestEntry]:
    """The latest entry per scene (by `finished`; of equal times, the one read last)."""
    latest: dict[str, ManifestEntry] = {}
    for entry in entries:
        if entry.scene not in latest or entry.finished >= latest[entry.scene].finished:
            latest[entry.scene] = entry
    return latest


def read_manifest(folder: Path) -> dict[str, ManifestEntry]:
    """The latest entry per scene of `folder`'s merged manifest (parts not included: `merge_manifest` first).
    Empty when there is none; OutputError when manifest.jsonl is not one this tool wrote."""
    path = Path(folder) / MANIFEST_NAME
    return _latest(_manifest_entries(path)) if path.is_file() else {}


@dataclass
class Merged:
    """What `merge_manifest` did. entries: the latest entry per scene, now in manifest.jsonl; from_parts: the
    entries the parts held (at a run's end: that run's scenes, as its ranks finished them)."""

    entries: dict[str, ManifestEntry]
    from_parts: list[ManifestEntry]

    def _latest_from_parts(self, status: str) -> list[ManifestEntry]:
        scenes = sorted({entry.scene for entry in self.from_parts})
        return [self.entries[scene] for scene in scenes if self.entries[scene].status == status]

    @property
    def done(self) -> list[ManifestEntry]:
        """The latest entries, by scene name, of the parts' scenes that are ok."""
        return self._latest_from_parts(OK)

    @property
    def failed(self) -> list[ManifestEntry]:
        """The latest entries, by scene name, of the parts' scenes that failed."""
        return self._latest_from_parts(FAILED)


def merge_manifest(folder: Path) -> Merged:
    """Merge every part in `folder` into its manifest.jsonl (written atomically, one line per scene sorted by name),
    remove the parts, and rewrite failed.log from the merged entries (removed when no scene's latest try failed).
    Rank 0 alone calls this, while no other rank writes. Without parts nothing is written."""
    folder = Path(folder)
    parts = sorted(folder.glob(PART_GLOB)) if folder.is_dir() else []
    manifest = folder / MANIFEST_NAME
    kept = _manifest_entries(manifest) if manifest.is_file() else []
    from_parts = [entry for part in parts for entry in _part_entries(part)]
    entries = _latest([*kept, *from_parts])
    if not parts:
        return Merged(entries, [])
    ordered = [entries[name] for name in sorted(entries)]
    write_text_atomic(manifest, "".join(entry.to_line() for entry in ordered))
    failed = [entry for entry in ordered if entry.status == FAILED]
    failed_log = folder / FAILED_LOG
    if failed:
        write_text_atomic(failed_log, "".join(f"{Path(entry.scene).stem}\t{entry.error}\n" for entry in failed))
    else:
        failed_log.unlink(missing_ok=True)
    for part in parts:
        part.unlink(missing_ok=True)
    return Merged(entries, from_parts)
