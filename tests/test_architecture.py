"""The package's shape: imports go one way (no cycle), fastbp modules are imported at the top of
a module only, the C core is compiled once, and each optional library is imported by its own
part of fastbp only."""
import ast
import glob
import os
import subprocess
import sys

import fastbp

PACKAGE_DIR = os.path.dirname(fastbp.__file__)


def module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-len(".py")]
    parts = relative.split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    files = glob.glob(os.path.join(PACKAGE_DIR, "**", "*.py"), recursive=True)
    trees = {}
    for path in files:
        with open(path) as f:
            trees[module_name(path)] = ast.parse(f.read(), path)
    return trees


def imported(node: ast.AST, known: set[str]) -> list[str]:
    """The fastbp modules an import statement loads (a name imported from a package counts as
    its submodule when there is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{alias.name}" for alias in node.names]
        found = [name for name in names if name in known]
        return found or ([node.module] if node.module in known else [])
    return []


def compiled_modules() -> set[str]:
    """The compiled extensions of the package (leaves of the import graph)."""
    return {f"fastbp.{f.split('.')[0]}" for f in os.listdir(PACKAGE_DIR)
            if f.endswith((".so", ".pyd"))}


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """{module: modules it imports, counting imports inside functions}, and every fastbp
    import inside a function or class (run when called, not when the module loads)."""
    trees = modules()
    known = set(trees) | compiled_modules()
    graph, nested = {name: set() for name in known}, []
    for name, tree in trees.items():
        deferred = {id(inner) for node in ast.walk(tree)
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    for inner in ast.walk(node)}
        for node in ast.walk(tree):
            targets = imported(node, known)
            graph[name].update(targets)
            if targets and id(node) in deferred:
                nested.append((name, node.lineno, targets[0]))
    return graph, nested


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (the modules in order), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    graph, _ = import_graph()
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_fastbp_modules_are_imported_at_the_top_only():
    _, nested = import_graph()
    assert nested == []


def test_the_network_core_does_not_import_training():
    graph, _ = import_graph()
    for name in graph:
        if name.startswith("fastbp.nn"):
            assert not {m for m in graph[name] if m.startswith(("fastbp.train", "fastbp.io",
                                                                "fastbp.sequential"))}, name


def test_one_compiled_extension():
    assert compiled_modules() == {"fastbp._core"}


# Optional libraries, and the one part of fastbp allowed to import each (None: no part).
OPTIONAL_LIBRARIES = {"sklearn": "fastbp.sklearn", "onnx": "fastbp.onnx_export",
                      "onnxruntime": None, "mpi4py": "fastbp.distributed", "torch": None,
                      "jax": None}


def third_party_imports(tree: ast.Module) -> set[str]:
    """Top-level package names a module imports (absolute imports)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_optional_libraries_are_imported_by_their_own_modules_only():
    wrong = []
    for name, tree in modules().items():
        for library in third_party_imports(tree) & set(OPTIONAL_LIBRARIES):
            owner = OPTIONAL_LIBRARIES[library]
            if owner is None or not (name == owner or name.startswith(owner + ".")):
                wrong.append(f"{name} imports {library}")
    assert not wrong, wrong
    assert "sklearn" in third_party_imports(modules()["fastbp.sklearn.base"])
    assert "mpi4py" in third_party_imports(modules()["fastbp.distributed.ranks"])


def test_importing_fastbp_imports_no_optional_library():
    code = ("import sys, fastbp, fastbp.cli; "
            f"print(sorted(set(sys.modules) & {set(OPTIONAL_LIBRARIES)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=os.path.dirname(PACKAGE_DIR))
    assert result.stdout.strip() == "[]"
