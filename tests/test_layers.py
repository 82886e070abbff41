"""Layers import one way: no module imports from a layer above its own (README, "Layout")."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Lowest first. Packages of one layer do not import each other.
LAYERS = {
    "utils": 0,
    "models": 1,
    "datamodules": 1,
    "lightning_modules": 2,
    "callbacks": 3,
    "scaffold": 4,
    "serving": 4,
    "cli": 5,
    "reports": 6,
}
NO_LIGHTNING = ("utils", "models")


def modules() -> list[Path]:
    return sorted(p for name in LAYERS for p in [*ROOT.glob(f"{name}/**/*.py"), ROOT / f"{name}.py"] if p.is_file())


def imported_names(path: Path) -> set[str]:
    """Top-level names of everything a module imports, lazily inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_the_layers(path):
    own = path.relative_to(ROOT).parts[0].removesuffix(".py")
    for name in imported_names(path) & set(LAYERS):
        if name != own:
            assert LAYERS[name] < LAYERS[own], f"{own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[name]})"


@pytest.mark.parametrize("package", NO_LIGHTNING)
def test_the_lower_layers_do_not_import_lightning(package):
    for path in (ROOT / package).glob("**/*.py"):
        assert not imported_names(path) & {"lightning", "pytorch_lightning"}, path
