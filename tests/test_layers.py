"""The dependency direction of docs/DESIGN.md ("Layers"), checked on every module's imports.

Read from the source with ``ast`` (nothing is imported), so a violation names the module, the
line and the rule it breaks. Imports inside ``if TYPE_CHECKING:`` count too: a layer that needs
another's types for checking depends on it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "storage", "catalog")
# Third-party libraries that tie code to data structures, stores or a scheduler.
ARRAY_IO = ("xarray", "zarr", "dask", "distributed", "fsspec", "s3fs", "numcodecs", "nibabel")
# (package prefix, forbidden import prefixes, why)
STORES = ("zarr", "dask", "distributed", "fsspec", "s3fs", "storage")
RULES = [
    ("flows.maths", ARRAY_IO, "maths is pure numpy: no xarray, zarr, dask or fsspec"),
    ("flows.maths", ("storage", "flows"), "maths uses flows.maths, flows.codecs, the taxonomy"),
    ("flows.maths", ("matplotlib", "PIL"), "maths computes; flows.reports renders"),
    ("flows.codecs", ("flows", "storage", "catalog", *ARRAY_IO), "codecs is a leaf"),
    ("flows.inputs", ("flows.phantom",), "real-input readers never import the phantom"),
    ("flows.phantom", ("storage", *ARRAY_IO), "the phantom makes arrays: it stores nothing"),
    ("flows.reports", STORES, "reports render what they are given; they open no store"),
    ("flows.reports", ("flows",), "reports use only flows.maths and flows.reports"),
    ("flows.runtime", ("flows", "storage", "catalog", "xarray", "zarr"), "runtime knows no data"),
    ("storage", ("flows", "catalog"), "storage knows bytes and schemas, not flows or the labels"),
    ("catalog", ("flows",), "catalog (the read side) never imports flows"),
]
ALLOWED = {  # exceptions to the prefixes above, by package
    "flows.maths": ("flows.maths", "flows.codecs", "catalog.taxonomy"),
    "flows.codecs": ("flows.codecs",),
    "flows.reports": ("flows.reports", "flows.maths", "catalog.taxonomy"),
    "flows.runtime": ("flows.runtime",),
}


def _modules(root: Path) -> list[tuple[str, Path]]:
    """Every module of our packages below ``root``, by dotted name."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, resolved to absolute names, with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(root: Path = ROOT) -> list[str]:
    """One sentence per import that breaks a rule: where, what, and the rule."""
    found: dict[tuple[str, int, str], str] = {}  # one per import statement and rule
    for module, path in _modules(root):
        for line, name in _imports(module, path):
            for package, forbidden, why in RULES:
                allowed = ALLOWED.get(package, ())
                if not _within(module, package) or any(_within(name, a) for a in allowed):
                    continue
                if any(_within(name, f) for f in forbidden):
                    where = f"{path.relative_to(root)}:{line}"
                    found.setdefault((where, line, why), f"{where} imports {name}: {why}")
    return sorted(found.values())


def test_every_module_follows_the_dependency_direction():
    assert _violations() == []


@pytest.mark.parametrize(
    ("folder", "source", "rule"),
    [
        ("flows/maths", "import xarray as xr\n", "maths is pure numpy"),
        ("flows/inputs", "from flows.phantom import make_phantom\n", "never import the phantom"),
        ("storage", "from flows.build import build_batch\n", "storage knows bytes"),
        ("catalog", "from ..flows import cli\n", "never imports flows"),
    ],
)
def test_a_violation_is_found_and_named(tmp_path, folder, source, rule):
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "probe.py").write_text(source)
    [violation] = _violations(tmp_path)
    assert violation.startswith(f"{folder}/probe.py:1 imports ") and rule in violation
