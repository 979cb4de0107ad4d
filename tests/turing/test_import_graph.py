"""The import graph of the project's packages, read from their source with ast: every import, at module level
and inside functions, so that a cycle cannot hide in a function body.

Imports under ``if TYPE_CHECKING:`` are left out: they never run, and they are how a module names another's
types without depending on it. An import names the module it imports, not the packages above it (whose
``__init__`` runs too, but holds no import back into the importer).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("turing", "colorization", "baselines")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.Module, module: str, is_package: bool, *, in_functions_only=False) -> set[str]:
    """Every dotted name tree imports (``from a import b`` gives a.b: a module if there is one, else a's
    attribute, which resolve() maps back to a); in_functions_only: those imported inside a function."""
    names = set()
    pending: list[ast.AST] = (
        [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if in_functions_only
        else [tree]
    )
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def build_graph(*, in_functions_only=False) -> dict[str, set[str]]:
    """Each module of PACKAGES -> the names it imports (modules of PACKAGES resolved, others as written);
    in_functions_only: only the imports inside functions."""
    sources = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
    graph = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(), str(path))
        names = imported_names(tree, module, path.name == "__init__.py", in_functions_only=in_functions_only)
        graph[module] = {resolve(name, sources) for name in names} - {module}
    return graph


def resolve(name: str, modules) -> str:
    """The project module a dotted name is (or is an attribute of), or the name itself outside the project."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in graph:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def outside(graph, modules_prefix, forbidden, allowed=()) -> dict[str, list[str]]:
    """For each module under modules_prefix, what it imports that starts with a forbidden prefix and is not
    allowed."""

    def under(name, prefixes):
        return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)

    return {
        module: sorted(name for name in names if under(name, forbidden) and not under(name, allowed))
        for module, names in graph.items()
        if under(module, [modules_prefix])
        and any(under(name, forbidden) and not under(name, allowed) for name in names)
    }


@pytest.fixture(scope="module")
def graph():
    return build_graph()


def turing_graph(graph):
    return {
        module: {name for name in names if name.startswith("turing.")}
        for module, names in graph.items()
        if module.startswith("turing")
    }


def test_the_graph_sees_imports_inside_functions(graph):
    # turing.stimuli.building imports the colorization code only when it builds a study (torch is slow to load).
    assert "colorization.inference" in graph["turing.stimuli.building"]


def test_no_import_cycle_among_turing_modules(graph):
    assert cycles(turing_graph(graph)) == []


def test_no_import_cycle_among_turing_packages(graph):
    # A cycle between packages (say, the protocols reading the report's types while the report asks the
    # protocols for their sections) ties their order of loading to which module happens to be imported first.
    assert cycles(package_graph(graph)) == []


def test_no_import_inside_a_function_among_the_models_protocols_and_participant_modules():
    # An import inside a function is how a cycle hides from the order in which modules load.
    core = ["turing.models", "turing.protocols", "turing.participant", "turing.vocabulary"]
    hidden = outside(build_graph(in_functions_only=True), "turing", core)
    assert {module: names for module, names in hidden.items() if any(module.startswith(c) for c in core)} == {}


def test_analysis_needs_no_django_and_nothing_of_turing_but_the_vocabulary(graph):
    imports = outside(graph, "turing.analysis", ["django", "turing"], allowed=["turing.analysis", "turing.vocabulary"])
    assert imports == {}


def test_colorization_and_baselines_stand_apart_from_django_and_the_site(graph):
    assert outside(graph, "colorization", ["django", "turing", "baselines", "evalsite"]) == {}
    assert outside(graph, "baselines", ["django", "turing", "evalsite"]) == {}


def package_graph(graph) -> dict[str, set[str]]:
    """turing's graph between its subpackages and top-level modules (turing.report.cache counts as turing.report)."""

    def package(name):
        return ".".join(name.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, names in turing_graph(graph).items():
        packages.setdefault(package(module), set()).update(package(name) for name in names)
    return {name: imported - {name} for name, imported in packages.items()}


if __name__ == "__main__":
    # python -m tests.turing.test_import_graph: turing's package graph, one line a package, then any cycle.
    whole = package_graph(build_graph())
    for name in sorted(whole):
        print(f"{name} -> {', '.join(sorted(whole[name])) or '(nothing of turing)'}")
    print("cycles:", cycles(whole) or "none")
