"""The package's structure: no import cycles, each layer imports only from those below it, and
no module reaches into another module's private names.

Imports are read from the source with `ast` (function-level imports included: a lazy import is a
dependency too), so this holds whatever the tests happen to execute.
"""
import ast
from pathlib import Path

import pytest

import pynn

PACKAGE = Path(pynn.__file__).resolve().parent
# The layers of the house, lowest first: a module may import from its own layer and below.
LAYERS = [
    {"pynn._version", "pynn._source_tree", "pynn._core", "pynn._platform", "pynn._atomic",
     "pynn.ops", "pynn.reference"},
    {"pynn.nn"},
    {"pynn.engine"},
    {"pynn.model", "pynn.data"},
    {"pynn.io", "pynn.interop"},  # files in and out: model files, ONNX, PyTorch
    {"pynn", "pynn.cli", "pynn.sklearn"},  # the package root gathers the public names
    {"pynn.__main__"},
]


def _modules() -> dict:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = (path, is_package)
    return found


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list:
    """(imported pynn module, names taken from it) for every import in the module's source."""
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names
                      if alias.name.split(".")[0] == "pynn"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            if target.split(".")[0] != "pynn":
                continue
            names = []
            for alias in node.names:
                child = f"{target}.{alias.name}"
                if child in MODULES or child == "pynn._core":
                    found.append((child, []))
                else:
                    names.append(alias.name)
            if names:
                found.append((target, names))
    return found


def _graph() -> dict:
    return {m: {target for target, _ in _imports(m) if target in MODULES and target != m}
            for m in MODULES}


def test_no_import_cycles():
    graph = _graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _layer(module: str) -> int:
    for rank, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members if m != "pynn") \
                or module in members:
            return rank
    raise AssertionError(f"{module} is in no layer of LAYERS: add it")


def test_each_layer_imports_only_from_below():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            if _layer(target) > _layer(module):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "upward imports:\n" + "\n".join(sorted(wrong))


def test_no_private_names_across_modules():
    wrong = []
    for module in MODULES:
        package = module if MODULES[module][1] else module.rsplit(".", 1)[0]
        for target, names in _imports(module):
            # a package may re-export its own private helpers; nobody else may take them
            if target.startswith(package + ".") or target == package:
                continue
            wrong += [f"{module} takes {name} from {target}" for name in names
                      if name.startswith("_") and not name.startswith("__")]
        path = MODULES[module][0]
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.level > 0
                   for a in node.names if not a.name.startswith("_")}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                wrong.append(f"{module} uses {node.value.id}.{node.attr}")
    assert not wrong, "private names used across modules:\n" + "\n".join(sorted(wrong))


def test_public_paths_unchanged():
    import importlib

    for path, name in [("pynn", "Sequential"), ("pynn", "Dense"), ("pynn", "ops"),
                       ("pynn.sklearn", "MLPClassifier"), ("pynn.sklearn", "MLPRegressor"),
                       ("pynn", "datasets"), ("pynn", "save"), ("pynn", "load"),
                       ("pynn.layers", "Dense"), ("pynn.optim", "SGD"), ("pynn.losses", "MSE"),
                       ("pynn.callbacks", "EarlyStopping"), ("pynn.init", "get"),
                       ("pynn.io", "ModelFileError"), ("pynn.gradcheck", "analytic_gradient"),
                       ("pynn.datasets", "load_digits"), ("pynn.model", "Sequential")]:
        assert hasattr(importlib.import_module(path), name), f"{path}.{name}"
