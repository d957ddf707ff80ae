"""The house rules of the construct package: no import cycles, rooms of a readable size.

``docs/architecture.md`` maps the modules to the data flow; these tests keep the map true as
the package grows: a new import cycle, or a module, class or function that outgrows its room,
fails here with the path to look at.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rightsizing_constructs"
# Sizes a newcomer can read in one sitting (issue #18); a larger one needs a reason here.
MAX_MODULE_LINES = 520
MAX_CLASS_LINES = 430
MAX_FUNCTION_LINES = 80
#: Functions allowed to be longer, with the reason.
LONG_FUNCTIONS = {
    "endpoint.py:EndpointRightsizing.__init__": "twenty keyword-only settings (CDK's props "
    "style) are named in the signature and once more in the single validation call that "
    "reports every problem at once; split up, the construct's shape would be harder to see.",
    "component.py:InferenceComponentRightsizing.__init__": "the same reason as "
    "EndpointRightsizing's: its twenty keyword-only settings, named twice.",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:`` (annotations only: never run)."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if not (isinstance(child, ast.stmt) and _is_type_checking_block(child)):
                stack.append(child)
    return found


def imports_of(path: Path) -> set[str]:
    """The package modules ``path`` imports when it runs (module level or inside a function)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rightsizing_constructs")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("rightsizing_constructs"):
                target = node.module
            else:
                continue
            found.add(target)
            # ``from . import triggers`` imports the submodule ``triggers``.
            found |= {
                f"{target}.{a.name}"
                for a in node.names
                if PACKAGE.parent.joinpath(*f"{target}.{a.name}".split("."))
                .with_suffix(".py")
                .exists()
            }
    return found - {module}


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "_lambda" not in p.parts}
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            if cycle := visit(target):
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start):
            return cycle
    return None


def test_the_construct_package_has_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_a_cycle_is_found() -> None:
    """The check can fail: a graph with a cycle through three modules is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_function_level_imports_count_and_type_checking_imports_do_not() -> None:
    """A deferred import inside a method is still a cycle; an annotation-only one never runs."""
    graph = import_graph()
    # engine.py names EndpointRightsizing in annotations only (under TYPE_CHECKING).
    assert "rightsizing_constructs.endpoint" not in graph["rightsizing_constructs.engine"]
    assert "rightsizing_constructs.engine" in graph["rightsizing_constructs.endpoint"]
    # The package's lazy exports import their modules inside __getattr__: they count.
    assert "rightsizing_constructs.cli" not in graph["rightsizing_constructs"]


def test_rooms_stay_readable() -> None:
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_lambda" in path.parts:
            continue
        relative = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{relative}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{relative}:{node.name}: {size} lines")
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        too_big += _long_function(relative, f"{node.name}.{item.name}", item)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                too_big += _long_function(relative, node.name, node)
    assert too_big == []


def _long_function(module: str, name: str, node: ast.FunctionDef) -> list[str]:
    size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    if size <= MAX_FUNCTION_LINES or f"{module}:{name}" in LONG_FUNCTIONS:
        return []
    return [f"{module}:{name}: {size} lines (at most {MAX_FUNCTION_LINES})"]
