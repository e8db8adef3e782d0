from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from spatialvlm_cli.config import load_yaml_config, merge_config
from spatialvlm_cli.errors import ConfigError


def make_app(seen: dict) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def run(
        ctx: typer.Context,
        vlm_pe: Annotated[str | None, typer.Option("--VLM_PE", "--vlm-pe")] = None,
        top_k: Annotated[int, typer.Option("--top_k")] = 10,
        greedy: Annotated[bool, typer.Option("--greedy")] = False,
        config: Annotated[Path | None, typer.Option("--config")] = None,
    ) -> None:
        seen.update(merge_config(ctx, config))

    return app


def test_yaml_fills_flags_and_command_line_wins(tmp_path: Path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("VLM_PE: 3D_RoPE\ntop-k: '5'\ngreedy: true\n")
    seen: dict = {}
    result = CliRunner().invoke(make_app(seen), ["--config", str(cfg), "--top_k", "7"])
    assert result.exit_code == 0, result.output
    assert seen["vlm_pe"] == "3D_RoPE"
    assert seen["top_k"] == 7  # the flag beats the file
    assert seen["greedy"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("top_k: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("no_such_flag: 1\n", "unknown key 'no_such_flag'"),
        ("top_k: many\n", "bad value for 'top_k'"),
    ],
)
def test_bad_configs(tmp_path: Path, text: str, message: str):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    result = CliRunner().invoke(make_app({}), ["--config", str(cfg)])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)


def test_missing_and_empty_config(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml_config(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml_config(tmp_path / "empty.yaml") == {}
