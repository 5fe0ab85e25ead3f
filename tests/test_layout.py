"""The walls of the package (CONTRIBUTING.md, "Architecture"), read from the code itself.

Every import of the project's own modules, function-level ones included, is resolved
from the AST: imports only go down the layers, packages of one layer never import each
other, nothing imports the CLI, there is no cycle, and the lite modules import neither
torch nor TensorFlow (nor onnx) when they load.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# Source folder -> the import name it is installed under (pyproject's package-dir).
SOURCES = {"converter": "fomm_convert", "parity": "fomm_convert.parity",
           "specs": "fomm_convert.specs"}
# Top to bottom; a module may import its own package and anything in a lower layer.
LAYERS = (
    ("",),  # fomm_convert/__init__.py: the public API, loaded lazily
    ("cli",),
    ("api",),
    ("pipeline", "bench", "many"),
    ("animation",),
    ("parity", "bundle"),
    ("export", "runtime"),
    ("synth",),
    ("tpsmm",),  # a model family: builds on FOMM's shared layers below it
    ("torch_model", "tf_model"),
    ("spec", "checkpoint", "media", "specs"),
    ("paths", "errors", "io", "architecture", "algebra", "signatures", "formats", "fixtures",
     "hull", "exact", "licence", "keypoints", "version", "limits",
     "extras"),
)
LEAVES = LAYERS[-1]
# (ray: its own extra, imported only by --engine ray.)
HEAVY = ("torch", "tensorflow", "onnx", "tf_keras", "keras", "ray")
# What a lite install (numpy, LiteRT, onnxruntime; no torch, no TensorFlow) loads: these
# packages whole, and these modules.
LITE_PACKAGES = ("cli", "animation", "bundle", "media", "checkpoint", "many", *LEAVES)
LITE = ("", "api", "pipeline", "pipeline.predict", "pipeline.inspect", "pipeline.progress",
        "pipeline.verify", "pipeline.reports", "pipeline.misfit", "pipeline.inspect_summary",
        "runtime", "runtime.base", "runtime.batching", "runtime.tflite_backend", "runtime.litert_c",
        "runtime.file_pages", "runtime.litert_library", "runtime.guarded",
        "runtime.onnx_backend", "runtime.openvino_backend", "runtime.browser", "runtime.browser.backend",
        "runtime.browser.session", "runtime.browser.server", "runtime.browser.chromium",
        "runtime.browser.protocol", "runtime.browser.placement", "export",
        "export.tflite_file", "export.tflite_graph", "export.gpu_rules", "export.tflite_ops",
        "spec", "specs", "tpsmm", "tpsmm.architecture", "tpsmm.tps_solve")


def is_lite(name: str) -> bool:
    return name in LITE or group(name) in LITE_PACKAGES


def module_files() -> dict[str, Path]:
    """{module name relative to fomm_convert ('' for the root): file}."""
    out = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([*package.split(".")[1:], *parts])
            out[name] = path
    return out


def imports(name: str, path: Path, modules) -> list[tuple[str, bool, int]]:
    """(imported module, at module level, line) for each import in a file; project
    modules relative to fomm_convert, others by their absolute name."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    package = [p for p in package if p]
    found = []

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            lazy = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((_project(alias.name), top, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[:len(package) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = _project(child.module)
                for alias in child.names:
                    sub = f"{target}.{alias.name}".lstrip(".")
                    found.append((sub if sub in modules else target, top, child.lineno))
            visit(child, top and not lazy)
    visit(tree, True)
    return found


def _project(name: str) -> str:
    if name == "fomm_convert" or name.startswith("fomm_convert."):
        return name[len("fomm_convert."):] if "." in name else ""
    return "!" + name  # not ours


def group(name: str) -> str:
    return name.split(".")[0]


def layer(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if group(name) in names:
            return i
    raise AssertionError(f"fomm_convert.{name}: in no layer of tests/test_layout.py")


@pytest.fixture(scope="module")
def graph():
    modules = module_files()
    return modules, {name: imports(name, path, modules) for name, path in modules.items()}


def wall_violations(graph) -> list[str]:
    modules, edges = graph
    problems = []
    for name, found in edges.items():
        for target, _, line in found:
            if target.startswith("!") or target == name:
                continue
            where = f"{modules[name].relative_to(ROOT)}:{line}"
            if group(target) == "cli" and group(name) != "cli":
                problems.append(f"{where}: imports the CLI ({target})")
            elif group(target) == group(name) and group(name) != "":
                continue
            elif group(name) in LEAVES and group(target) in LEAVES:
                continue
            elif layer(target) <= layer(name):
                problems.append(f"{where}: fomm_convert.{name} imports fomm_convert.{target}, "
                                "which is not below it")
    return problems


def cycles(graph) -> list[list[str]]:
    _, edges = graph
    adjacency = {n: sorted({t for t, _, _ in found if not t.startswith("!") and t != n
                            and t in edges}) for n, found in edges.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adjacency[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    sys.setrecursionlimit(10000)
    for v in adjacency:
        if v not in index:
            connect(v)
    return found


def test_every_module_has_a_layer(graph):
    modules, _ = graph
    for name in modules:
        layer(name)


def test_imports_only_go_down(graph):
    assert wall_violations(graph) == []


def test_no_import_cycle(graph):
    # A package's __init__ and the submodules it re-exports are one unit only when the
    # submodules do not import the package back: a cycle is a cycle here too.
    assert cycles(graph) == []


def test_lite_modules_load_no_heavy_framework(graph):
    modules, edges = graph
    heavy = [f"{modules[n].relative_to(ROOT)}:{line}: {t[1:]}" for n in modules if is_lite(n)
             for t, top, line in edges[n] if top and t.startswith("!")
             and t[1:].split(".")[0] in HEAVY]
    assert heavy == []


def test_lite_commands_run_without_torch_or_tensorflow():
    """In a process where torch, TensorFlow and onnx cannot be imported, the lite modules
    load and `fomm-convert --help` lists every command."""
    lite = sorted(n for n in module_files() if is_lite(n) and n and n != "specs"
                  and not n.endswith("__main__"))
    script = (
        "import sys\n"
        f"for name in {HEAVY!r}: sys.modules[name] = None\n"
        "import importlib\n"
        f"for name in {lite!r}:\n"
        "    importlib.import_module('fomm_convert.' + name)\n"
        "from click.testing import CliRunner\n"
        "from fomm_convert.cli import cli, COMMANDS\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "missing = [c for c in COMMANDS if c not in result.output]\n"
        "assert not missing, missing\n"
        "print('ok')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_the_wall_test_catches_a_broken_wall(graph):
    """The checks above fail on a graph with an upward import and a cycle."""
    modules, edges = graph
    broken = dict(edges)
    broken["tf_model.weights"] = edges["tf_model.weights"] + [("torch_model", True, 1),
                                                              ("cli", False, 2)]
    broken["spec"] = edges["spec"] + [("pipeline.build", False, 3)]
    problems = wall_violations((modules, broken))
    assert any("imports fomm_convert.torch_model" in p for p in problems)
    assert any("imports the CLI" in p for p in problems)
    assert any("fomm_convert.spec imports fomm_convert.pipeline.build" in p for p in problems)
    assert cycles((modules, broken))
