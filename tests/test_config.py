from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import CallQAError


def test_defaults_are_the_handbook_and_measured_values() -> None:
    settings = load_settings(Path("/dev/null"))
    assert settings.asr.language == "zh" and settings.asr.beam_size == 5
    assert settings.input.filename_pattern == "{agent_id}_{YYYYmmdd-HHMMSS}*.wav"
    assert settings.input.default_stereo_layout == "stereo-agent-left"
    assert settings.stereo.louder_db == 6.0 and settings.mono.num_speakers == 2


def test_file_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "callqa.toml"
    config.write_text(
        'db = "night.duckdb"\n[asr]\nbeam_size = 3\n[input]\ndefault_stereo_layout = "stereo-agent-right"\n'
    )
    settings = load_settings(config, db=tmp_path / "other.duckdb")
    assert settings.asr.beam_size == 3 and settings.input.default_stereo_layout == "stereo-agent-right"
    assert settings.db == tmp_path / "other.duckdb"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[asr]\nbeam_sise = 3\n", "asr.beam_sise"),  # a typo is an error, not a silent default
        ("[asr]\nbeam_size = 0\n", "asr.beam_size"),
        ('[input]\ndefault_stereo_layout = "left"\n', "input.default_stereo_layout"),
        ("[stereo\n", "不是有效的 TOML（第 1 行"),
    ],
)
def test_bad_configuration_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(CallQAError) as err:
        load_settings(config)
    assert "bad.toml" in str(err.value) and field in str(err.value)
