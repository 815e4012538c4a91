"""Flag student code that tampers with the grader instead of answering.

Autograding runs student code in the same Python process as the tests, so a submission could
monkeypatch NumPy or the checking helpers, replace builtins, swallow exceptions with IPython's
``set_custom_exc`` or swap modules in ``sys.modules``, and wrong answers would pass. The
sandbox cannot prevent that (it is the same process), so every cell the student wrote is
read (as Python, after IPython's own magic translation) and each such construct is reported;
the grader then marks the submission ``flagged`` for a person to review, with these findings.
"""
import ast
import functools

from IPython.core.inputtransformer2 import TransformerManager

#: Names the test cells rely on: a student cell must not rebind them.
PROTECTED_NAMES = {"CheckFailed", "CallTimedOut", "describe", "check", "check_shape", "check_equal",
                   "check_close", "run_quietly", "time_limit", "CALL_TIME_LIMIT", "np", "numpy",
                   "warnings", "contextlib", "copy", "io", "signal",
                   # the setup cell's record of the figures each cell shows (the plot checks read it)
                   "shown_figures", "_record_cell", "_record_figure"}
#: Modules whose attributes a student cell must not assign.
MODULES = {"numpy", "np", "builtins", "__builtins__", "sys", "warnings", "contextlib", "copy", "io",
           "signal", "scipy", "sklearn", "IPython", "matplotlib", "plt", "time", "os", "math"}
FORBIDDEN_CALLS = {"exec": "calls exec", "eval": "calls eval", "compile": "calls compile",
                   "__import__": "calls __import__", "get_ipython": "uses get_ipython()",
                   "globals": "changes globals()", "setattr": "calls setattr", "delattr": "calls delattr"}
FORBIDDEN_ATTRIBUTES = {"set_custom_exc": "uses set_custom_exc", "modules": "touches sys.modules",
                        "settrace": "calls sys.settrace", "setprofile": "calls sys.setprofile",
                        "_getframe": "inspects stack frames", "currentframe": "inspects stack frames",
                        "get_referrers": "walks the garbage collector", "setitimer": "changes signal timers",
                        "alarm": "changes signal timers", "signal": "installs signal handlers"}
FORBIDDEN_IMPORTS = {"builtins", "ctypes", "gc", "inspect", "importlib", "signal"}


def _root_name(node):
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


@functools.lru_cache(maxsize=1024)  # most cells are the release's own, the same in every submission
def _parse(source):
    """The syntax tree of a cell's ``source`` after IPython's transforms (never to be changed:
    it is shared), or None."""
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None  # code that does not parse cannot run either


def imported_names(source):
    """Names an import statement of ``source`` binds (module aliases such as ``npt``)."""
    tree = _parse(source)
    if tree is None:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def scan_source(source, modules=frozenset()):
    """Findings (short phrases) for one cell's source; [] when it does nothing suspicious.

    ``modules``: more names bound to modules (imports of other cells).
    """
    tree = _parse(source)
    if tree is None:
        return []
    modules = MODULES | set(modules) | imported_names(source)
    findings = []
    explicit_ipython = "get_ipython" in source
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in PROTECTED_NAMES:
                findings.append(f"redefines {node.name}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS:
                    findings.append(f"imports {name}")
            for alias in node.names:
                if (alias.asname or alias.name) in PROTECTED_NAMES - {"np", "numpy", "warnings", "contextlib", "copy", "io", "signal"}:
                    findings.append(f"rebinds {alias.asname or alias.name} by an import")
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name in FORBIDDEN_CALLS and (name != "get_ipython" or explicit_ipython):
                findings.append(FORBIDDEN_CALLS[name])
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            root = _root_name(node)
            if node.attr != "signal" or root == "signal":
                if node.attr != "modules" or root == "sys":
                    findings.append(FORBIDDEN_ATTRIBUTES[node.attr])
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "_grader") or (
                isinstance(node, ast.Name) and node.id.startswith("_ref_")):
            findings.append(f"uses {node.id}")
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name) and leaf.id in PROTECTED_NAMES and leaf is target:
                    findings.append(f"rebinds {leaf.id}")
            if isinstance(target, (ast.Attribute, ast.Subscript)) and _root_name(target) in modules:
                findings.append(f"assigns {_dotted(target) if isinstance(target, ast.Attribute) else _root_name(target) + '[...]'}")
    return sorted(set(findings))


def scan_notebook(nb, is_student_cell):
    """Map a label for each student cell with findings ('cell <grade_id or number>') to them."""
    report = {}
    modules = set().union(*(imported_names(c.source) for c in nb.cells if c.cell_type == "code"))
    for number, cell in enumerate(nb.cells, start=1):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not is_student_cell(meta):
            continue
        findings = scan_source(cell.source, modules)
        if findings:
            report[f"cell {meta.get('grade_id') or number}"] = findings
    return report


def describe_findings(report):
    return "; ".join(f"{label}: {', '.join(found)}" for label, found in report.items())
