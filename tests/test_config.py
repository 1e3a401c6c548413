"""Configuration files: validation and round trip."""

import pytest

from incubloc.config import DEFAULTS, dump_config, load_config, resolve_config
from incubloc.errors import ConfigError


def test_defaults_and_override(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[input]\nincubators = "inc.csv"\ncoords = "gcj02"\n[stats]\nseed = 5\n')
    cfg = load_config(p)
    assert cfg["stats"]["seed"] == 5
    assert cfg["input"]["coords"] == "gcj02"
    # Relative paths resolve against the config file's folder.
    assert cfg["input"]["incubators"] == str((tmp_path / "inc.csv").resolve())
    assert cfg["density"]["kernel"] == DEFAULTS["density"]["kernel"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[stats]\nsede = 1\n", r"unknown key \[stats\] sede"),
        ("[statistics]\nseed = 1\n", r"unknown section \[statistics\]"),
        ("[stats]\nseed = 'one'\n", r"\[stats\] seed must be an integer"),
        ("[input]\ncoords = 'utm'\n", r"coords = 'utm' is not one of wgs84, gcj02, bd09"),
        ("[stats]\nfdr = 1\n", r"fdr must be true or false"),
        ("[stats\n", "not valid TOML"),
    ],
)
def test_bad_config_is_named(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        load_config(p)
    assert "bad.toml" in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_dump_roundtrip(tmp_path):
    cfg = resolve_config({"stats": {"seed": 9, "cell_sizes_m": [1000, 3000]}, "density": {"bandwidth": 2500.0}})
    p = tmp_path / "out.toml"
    p.write_text(dump_config(cfg))
    again = load_config(p)
    assert again == cfg
