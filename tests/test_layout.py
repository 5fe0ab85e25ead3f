"""The walls of the package (CONTRIBUTING.md, "Architecture"), read from the code itself.

Every import of the project's own modules, function-level ones included, is resolved
from the AST: imports only go down the layers, packages of one layer never import each
other, nothing imports the CLI, there is no cycle, and the lite modules import neither
torch nor TensorFlow (nor onnx) when they load.

Model families (families.py, docs/design.md "Model families"): a family package's modules
sit in the layers of the shared packages they extend (its `torch_model` in torch_model's,
its `spec` in spec's: families.INTERFACE says where each interface module goes) and may
build on that shared package; no module outside a family package imports one or names a
family (only the registry does), a family's module is asked for (Family.facet) only from
its layer or above, and families do not import each other.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from fomm_convert.families import FAMILIES, INTERFACE

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
    ("torch_model", "tf_model"),
    ("spec", "checkpoint", "media", "specs"),
    ("paths", "errors", "io", "architecture", "algebra", "signatures", "formats", "fixtures",
     "hull", "exact", "licence", "keypoints", "version", "limits",
     "extras", "families", "double_float"),
)
LEAVES = LAYERS[-1]
# The model family packages (families.py), and the shared package whose layer each of
# their modules sits in: an interface module's (families.INTERFACE), a module named after
# a shared package (torch_model, architecture, ...) that package's, and these.
FAMILY_PACKAGES = {f.package for f in FAMILIES.values()}
FAMILY_MODULES = {"tps_solve": "algebra", "keypoint_head": "double_float",
                  "tps_kernel": "double_float", "conditioning": "synth", "onnx_export": "export"}
REGISTRY = "families"  # the one module outside the family packages that names them
# (ray: its own extra, imported only by --engine ray; executorch: its own extra too.)
HEAVY = ("torch", "tensorflow", "onnx", "tf_keras", "keras", "ray", "executorch")
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
        "spec", "specs", "fomm", "fomm.spec", "fomm.signatures", "fomm.runtime", "fomm.predict",
        "tpsmm", "tpsmm.spec", "tpsmm.runtime", "tpsmm.predict")


def is_lite(name: str) -> bool:
    return name in LITE or placed(name) in LITE_PACKAGES


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


def family_of(name: str) -> str | None:
    """The family package a module belongs to, if any."""
    return name.split(".")[0] if name.split(".")[0] in FAMILY_PACKAGES else None


def group(name: str) -> str:
    """A module's package: its first component, or in a family package its first two
    (each module of the family interface is a group of its own)."""
    return ".".join(name.split(".")[:2 if family_of(name) else 1])


def placed(name: str) -> str:
    """The shared package whose layer a module sits in (itself but for family modules; a
    family package's own __init__ is a leaf)."""
    if not family_of(name):
        return group(name)
    module = name.split(".")[1] if "." in name else ""
    if not module:
        return LEAVES[0]
    if module in INTERFACE:
        return INTERFACE[module].layer
    return FAMILY_MODULES.get(module, module)


def layer(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if placed(name) in names:
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
            elif family_of(target) and family_of(target) != family_of(name) \
                    and group(name) != REGISTRY:
                problems.append(f"{where}: imports the family package {target}")
            elif group(target) == group(name) and group(name) != "":
                continue
            elif family_of(name) and placed(name) == group(target):
                continue  # a family module builds on the shared package of its layer
            elif placed(name) in LEAVES and placed(target) in LEAVES:
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


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def family_names(graph) -> list[str]:
    """Modules outside the family packages and the registry that name a family: a string
    constant equal to a family's name."""
    modules, _ = graph
    found = []
    for name, path in modules.items():
        if family_of(name) or group(name) == REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in FAMILIES:
                found.append(f"{shown(path)}:{node.lineno}: {node.value!r}")
    return found


def facet_requests(graph) -> list[str]:
    """Family.facet("X") calls from a layer below X's (families.INTERFACE)."""
    modules, _ = graph
    wrong = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "facet" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                facet = INTERFACE[node.args[0].value]
                if layer(name) > layer(facet.layer):
                    wrong.append(f"{shown(path)}:{node.lineno}: asks for "
                                 f"{node.args[0].value!r} ({facet.layer}'s layer)")
    return wrong


def test_no_module_outside_a_family_package_names_a_family(graph):
    """The pipeline, bundle, runtimes, parity and animation ask the registry's row
    (families.family_of(spec)); none branches on a family's name."""
    assert family_names(graph) == []


def test_family_modules_are_asked_for_from_their_layer_or_above(graph):
    assert facet_requests(graph) == []


def test_every_family_package_implements_the_interface():
    """Each row's package has every interface module (`convert` exactly when the family
    has formats), each module where families.INTERFACE places it."""
    modules = module_files()
    for family in FAMILIES.values():
        required = [m for m in INTERFACE if m != "convert" or family.formats]
        absent = [m for m in required if f"{family.package}.{m}" not in modules]
        assert absent == [], (family.name, absent)
        assert (f"{family.package}.convert" in modules) == bool(family.formats), family.name
        for module in INTERFACE:
            if f"{family.package}.{module}" in modules:
                assert placed(f"{family.package}.{module}") == INTERFACE[module].layer


def test_the_family_walls_catch_a_broken_one(graph, tmp_path):
    """An import of a family package from outside, one family importing another, a
    family's name in shared code and a request from below a module's layer all fail."""
    modules, edges = graph
    broken = dict(edges)
    broken["pipeline.build"] = edges["pipeline.build"] + [("tpsmm.spec", False, 1)]
    broken["tpsmm.predict"] = edges["tpsmm.predict"] + [("fomm.predict", False, 2)]
    problems = wall_violations((modules, broken))
    assert any("build.py:1: imports the family package tpsmm.spec" in p for p in problems)
    assert any("predict.py:2: imports the family package fomm.predict" in p for p in problems)
    shared = {"hull": modules["hull"], "tpsmm.spec": modules["tpsmm.spec"],
              "spec": modules["spec"]}
    assert family_names((shared, {})) == []
    probe = tmp_path / "probe.py"
    probe.write_text('FAMILY = "tpsmm"\nfamily.facet("convert")\n')
    assert family_names(({"hull": probe}, {})) == [f"{probe}:1: 'tpsmm'"]
    assert facet_requests(({"hull": probe}, {})) == [
        f"{probe}:2: asks for 'convert' (pipeline's layer)"]


def test_every_package_ships():
    """Every package folder is one pyproject.toml installs (a family package added without
    it works in a checkout and is missing from the wheel)."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(["fomm_convert", *name.split(".")]).rstrip(".")
             for name, path in module_files().items() if path.name == "__init__.py"}
    assert found == listed
