"""Guards of the source layout that would otherwise break imports in surprising ways."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_source_root_is_not_a_package() -> None:
    # A package named `operator` would shadow Python's standard library module of that name.
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_package_ships_its_type_marker() -> None:
    assert (ROOT / "operator" / "fastrollout" / "py.typed").is_file()
