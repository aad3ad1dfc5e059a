"""The one YAML reader: same values as PyYAML's safe_load, one-line errors naming file and line, large files read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cosmic import load_config
from cosmic.errors import ConfigError
from cosmic.yamlio import load, read_yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "src" / "cosmic" / "catalog").rglob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_reads_every_shipped_file_as_pyyaml_safe_load_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["a: 1e3", "a: 0x10", "a: yes", "a: 1_000", "a: 2024-01-01", "a: .inf", "a: ~",
                                  "a: '007'", "a: [1, 2.5, {b: null}]", "a: &x 1\nb: *x"])
def test_resolves_scalars_as_pyyaml_safe_load_does(text: str) -> None:
    assert load(text) == yaml.safe_load(text)


def test_a_two_megabyte_scalar_is_read_and_refused_as_a_configuration(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("é" * 1_000_000, encoding="utf-8")
    assert read_yaml(f) == "é" * 1_000_000
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert str(exc.value) == f"{f}: a configuration must be a mapping, got str"


@pytest.mark.parametrize(("text", "message"), [
    ("model: gpt3-175b\nsystem: [\n", "line 3: "),
    ("a: 1\n\tb: 2\n", "line 2: "),
    ("a: " + "[" * 5000 + "]" * 5000, "nest"),
    ("a: " + "9" * 5000, "a number has too many digits"),
    ("[" * 999 + "]" * 999, "YAML nested too deeply (more than 100 levels)"),  # parses; too deep to work with
    ("a: &a [*a]\n", "YAML nested too deeply"),  # a list holding itself
])
def test_broken_yaml_is_one_line_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_yaml(f)
    assert str(exc.value).startswith(f"{f}: ") and message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: cannot read: UnicodeDecodeError"):
        read_yaml(bad)


def test_aliases_are_walked_once_not_expanded(tmp_path: Path) -> None:
    """A "billion laughs" document (9 nested lists of 9 aliases: 9^10 leaves) is read, not expanded."""
    lines = ["l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    f = tmp_path / "laughs.yaml"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_yaml(f)
    assert data["l9"][0][0] is data["l7"]
