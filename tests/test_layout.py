"""The project's shape (issue 40): scripts are leaves over a library floor, utils.py is plumbing, and each
registry (students, distillation losses) is the one list its flag offers."""
import ast
import glob
import os

import pytest

import args
import losses
import students

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("", "bench", "tests")  # the root's modules and scripts, the benches, the tests


def parsed(folder):
    return {path: ast.parse(open(path, encoding="utf-8").read(), path)
            for path in sorted(glob.glob(os.path.join(ROOT, folder, "*.py")))}


def is_script(tree):
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'" for node in tree.body)


def imported(tree):
    """(line, top-level module name) of every import in a module, also those inside functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.lineno, node.module.split(".")[0]


def offences(trees, forbidden):
    return [f"{os.path.relpath(path, ROOT)}:{line} imports {forbidden[name]}"
            for path, tree in trees.items() for line, name in imported(tree) if name in forbidden]


def test_no_file_imports_a_script():
    """A file with a __main__ block is run, never imported: what scripts share lives in library modules
    (tests run a script's main from its file: conftest.main_of)."""
    trees = {path: tree for folder in FOLDERS for path, tree in parsed(folder).items()}
    scripts = {os.path.basename(path)[:-3]: os.path.relpath(path, ROOT) for path, tree in trees.items()
               if is_script(tree)}
    assert {"student_lstm_small", "teacher_student_distill", "bench_robustness"} <= set(scripts)  # the test sees them
    found = offences(trees, {name: f"{path}, a script" for name, path in scripts.items()})
    assert not found, "\n".join(found)


def test_utils_imports_no_project_module():
    """utils.py is the floor's floor: process and file plumbing every module may import."""
    root = parsed("")
    project = {os.path.basename(path)[:-3]: os.path.relpath(path, ROOT) for path in root}
    utils = os.path.join(ROOT, "utils.py")
    found = offences({utils: root[utils]}, project)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module, registry, flag_values", [(students, "STUDENTS", args.STUDENTS),
                                                           (losses, "DISTILL_LOSSES", args.DISTILL_LOSSES)])
def test_each_flag_offers_its_registry_and_no_other_module_lists_it(module, registry, flag_values):
    """--student and --distill_loss offer the registry's keys, read from its source; no other module of the
    project keeps a list of them that a new entry would have to join."""
    names = list(getattr(module, registry))
    assert list(flag_values) == names
    listed = []
    for path, tree in parsed("").items():
        if os.path.basename(path) == os.path.basename(module.__file__):
            continue
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and set(names) <= {
                    item.value for item in items if isinstance(item, ast.Constant)}:
                listed.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    assert not listed, f"{registry} listed again at " + ", ".join(listed)
