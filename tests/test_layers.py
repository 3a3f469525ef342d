"""The layers stay apart: the report and the sweep process import no paddle, and no runner module
imports, even lazily inside a function, one that imports it back."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO, cli, tiny_experiment

PACKAGE = REPO / "runner"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """runner modules `path` imports anywhere in it (top level or inside functions)."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in modules}
    return found


def test_no_import_cycle_among_runner_modules():
    graph = {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}
    # a package imports its own submodules to register them: that edge is not a layer reaching up
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") and name in ("runner.models", "runner.data",
                                                                                               "runner.sweep.executors"))}

    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return path + [nxt]
                if nxt not in path and len(path) < 12:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for c in (cycle_from(m) for m in sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def paddle_imported_by(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1] == "True"


def test_the_sweep_and_the_report_import_no_paddle():
    assert not paddle_imported_by("import runner.sweep.loop, runner.report.comparison, runner.report.files, runner.sweep.plan, "
                                  "runner.sweep.executors, runner.sweep.progress, runner.store.runfiles")


def test_runner_report_runs_without_paddle(tmp_path, outputs):
    cli("sweep", tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', epochs=1), check=True)
    code = ("import sys, runpy\n"
            "class NoPaddle:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'paddle' or name.startswith('paddle.'):\n"
            "            raise ImportError('paddle imported by runner report')\n"
            "sys.meta_path.insert(0, NoPaddle())\n"
            f"sys.argv = ['runner', 'report', {str(outputs / 'tiny')!r}, '--format', 'json']\n"
            "runpy.run_module('runner', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"run_id": "lenet-s0-' in proc.stdout
