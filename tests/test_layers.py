"""The layers stay apart: each room of the package imports only the rooms below it, no runner module
imports, even lazily inside a function, one that imports it back, and the sweep and the report run
without paddle, at import time and on real files."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_SECONDS, REPO, cli, tiny_experiment

PACKAGE = REPO / "runner"

# (importer prefix, imported prefix, the modules allowed to anyway): a room never reaches up or across.
FORBIDDEN = [
    ("runner.store", "runner.run", ()), ("runner.store", "runner.sweep", ()), ("runner.store", "runner.report", ()),
    ("runner.store", "runner.models", ()),
    ("runner.report", "runner.run", ()), ("runner.report", "runner.sweep", ()), ("runner.report", "runner.models", ()),
    ("runner.run", "runner.sweep", ()), ("runner.run", "runner.report", ()),
    # `runner train` trains in the sweep's own process: the one module of the sweep that starts a run
    ("runner.sweep", "runner.run", ("runner.sweep.in_process",)),
    # the sweep asks the zoo through runner.zoo, which imports it in a child process
    ("runner.sweep", "runner.models", ()),
    ("runner.models", "runner.run", ()), ("runner.models", "runner.sweep", ()), ("runner.models", "runner.report", ()),
    ("runner.data", "runner.run", ()), ("runner.data", "runner.sweep", ()), ("runner.data", "runner.report", ()),
]


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


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_room_imports_a_room_above_it():
    broken = [f"{module_name(p)} imports {imported}"
              for p in sorted(PACKAGE.rglob("*.py")) for imported in sorted(imports_of(p))
              for importer, target, allowed in FORBIDDEN
              if within(module_name(p), importer) and within(imported, target) and module_name(p) not in allowed]
    assert not broken, "\n".join(broken)


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
    rooms = ("runner.sweep", "runner.report", "runner.store")
    names = sorted(m for m in map(module_name, PACKAGE.rglob("*.py")) if any(within(m, r) for r in rooms))
    assert "runner.sweep.driver" in names and "runner.report.files" in names
    assert not paddle_imported_by("import " + ", ".join(names + ["runner.config", "runner.data", "runner.zoo"]))


# paddle made unimportable in the process that runs `runner ...`, as on a machine without it; a child
# process it starts (a worker, the zoo's) is a fresh interpreter and may import it
WITHOUT_PADDLE = ("import sys, runpy\n"
                  "class NoPaddle:\n"
                  "    def find_spec(self, name, path=None, target=None):\n"
                  "        if name == 'paddle' or name.startswith('paddle.'):\n"
                  "            raise ImportError('paddle imported by runner ' + sys.argv[1])\n"
                  "sys.meta_path.insert(0, NoPaddle())\n"
                  "sys.argv = ['runner', *{args!r}]\n"
                  "runpy.run_module('runner', run_name='__main__')\n")


def runner_without_paddle(*args) -> subprocess.CompletedProcess:
    code = WITHOUT_PADDLE.format(args=[str(a) for a in args])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_SECONDS)


def test_runner_report_runs_without_paddle(tmp_path, outputs):
    cli("sweep", tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', epochs=1), check=True)
    proc = runner_without_paddle("report", outputs / "tiny", "--format", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"run_id": "lenet-s0-' in proc.stdout


@pytest.mark.parametrize("extra", [(), ("--set", "model_args={ aux_heads = false }", "--set", "model=googlenet")])
def test_a_dry_run_of_a_real_file_plans_and_estimates_without_paddle(outputs, extra):
    """The checks of load_experiment (models, model_args, datasets, augmentation, memory) and the
    plan's time estimate all run in a process without paddle."""
    proc = runner_without_paddle("sweep", REPO / "experiments" / "quick.toml", "--dry-run", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "est. min" in proc.stdout and "about ?" not in proc.stdout, proc.stdout
    assert not (outputs / "quick").exists()
