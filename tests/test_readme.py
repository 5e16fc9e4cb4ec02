"""The README stays a user's document: short, and every file it names is in the repository."""
import glob
import os
import re

from conftest import ROOT

README = os.path.join(ROOT, "README.md")
# What names a file of the repository: a script, recipe, page or picture, or anything under one of
# its folders (the scripts' output folders, teacher/, runs/, ..., are not); in a command, data too.
EXTENSIONS = (".py", ".sh", ".txt", ".md", ".png")
FOLDERS = ("bench/", "docs/", "recipes/", "tests/")
PLACEHOLDERS = ("DIR", "OUT", "<", "$", "~", "{")  # DIR/train.tsv, OUT/export, runs/quick-<date-time>/


def named_paths(text):
    """Every word of a code span, of a command (with its data files) and every link target that reads as a
    repository path."""
    blocks = re.findall(r"```.*?```", text, flags=re.S)
    spans = re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", text, flags=re.S))
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)]
    words = [(w, EXTENSIONS + (".tsv",)) for block in blocks for w in block.split()]
    words += [(w, EXTENSIONS) for span in spans for w in span.split()] + [(w, ("",)) for w in links]
    for word, extensions in words:
        word = word.strip("`,;:()'\"").removeprefix("@").rpartition("=")[2]  # @recipes/x.txt, NAME=FILE
        if not word or word.startswith(("-", "http")) or any(p in word for p in PLACEHOLDERS):
            continue
        # ../shared is outside the repository: the data folder beside the checkout on the project's
        # own machines (the README says so and how to get its files elsewhere), so it is not checked.
        if word.startswith("../shared/"):
            continue
        if word.endswith(extensions) or word.startswith(FOLDERS):
            yield word


def test_the_readme_is_short():
    assert os.path.getsize(README) < 15_000


def test_every_file_the_readme_names_exists():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    paths = set(named_paths(text))
    assert {"teacher_train_glue.py", "recipes/distill.txt", "docs/frontier.png"} <= paths  # the parse finds them
    missing = sorted(p for p in paths if not glob.glob(os.path.join(ROOT, p)))
    assert not missing, f"the README names files the repository does not hold: {missing}"
