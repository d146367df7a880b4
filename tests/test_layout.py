"""The layout the README promises: packages import one way, no cycles, small modules, light imports."""

import ast
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGES = ["matting", "compositing", "idphoto", "realtime", "web", "app"]  # each may import only those before it
MAX_LINES = 400


def project_imports(path):
    """Top-level project packages and modules ``path`` imports (absolute and relative)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def modules():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py"))


def test_packages_import_one_way():
    problems = []
    for path in modules():
        rank = PACKAGES.index(path.parent.name)
        for name in project_imports(path):
            if PACKAGES.index(name.split(".")[0]) > rank:
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, problems


def module_graph():
    """module name -> the project modules it imports (``pkg.__init__`` for a package itself)."""
    graph = {}
    for path in modules():
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        deps = set()
        for imported in project_imports(path):
            parts = imported.split(".")
            for n in range(len(parts), 0, -1):  # the longest prefix that is a module or a package
                candidate = ROOT.joinpath(*parts[:n])
                if candidate.with_suffix(".py").is_file():
                    deps.add(".".join(parts[:n]))
                    break
                if (candidate / "__init__.py").is_file():
                    deps.add(".".join(parts[:n]) + ".__init__")
                    break
        deps.discard(name)
        graph[name] = deps
    return graph


def test_no_import_cycles_between_modules():
    graph = module_graph()
    for name, deps in graph.items():  # inside a package, import modules, not the package's __init__
        own_init = name.split(".")[0] + ".__init__"
        assert name.endswith("__init__") or own_init not in deps, f"{name} imports {own_init}"
    done, stack = set(), []

    def visit(node):
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            assert dep not in stack, "import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep])
            if dep not in done:
                visit(dep)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)


def test_modules_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in modules() + [ROOT / "live.py"]
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, big


@pytest.mark.parametrize("module", ["matting.weights", "matting.errors", "matting.selfie", "matting.onnx_engine",
                                    "compositing", "matting"])
def test_light_paths_do_not_import_torch(module):
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {module}; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_the_command_line_and_the_benchmarks_load_without_the_web_packages():
    """Only ``--web`` needs FastAPI, Gradio and uvicorn: the CLI and ``bench/`` load without them
    (a GPU box with only torch and OpenCV runs ``bench/gpu_check.py``), and do not import them."""
    web = ("fastapi", "gradio", "uvicorn", "starlette")
    code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'bench')!r}]\n"
            f"for name in {web!r}: sys.modules[name] = None  # importing one fails\n"
            "import app, common\n"
            "from app.cli import main\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in " + repr(web) + " and sys.modules[n]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
