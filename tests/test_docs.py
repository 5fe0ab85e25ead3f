"""Every repository path a comment, a docstring or a doc names exists, and every link
between the docs lands: a file that moves takes its references with it."""
from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

from conftest import ROOT

# The first folder of a path we check: the repository's own, and converter/'s packages,
# which comments name from inside the package (e.g. tf_model/fast.py).
TOP = ("converter", "parity", "specs", "tests", "scripts", "web", "docs", ".github", ".ci")
PACKAGES = tuple(p.name for p in (ROOT / "converter").iterdir()
                 if (p / "__init__.py").is_file())
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./<>-]*[\w>])" % "|".join(
    re.escape(t) for t in TOP + PACKAGES))
# Not the repository's: a bundle's own files (README, "The bundle"), and what make web
# installs.
ELSEWHERE = re.compile(r"^parity/(report|weights)\b|^web/node_modules(/|$)")
# A section named in prose: (README, "Python API"), docs/design.md, "Rewrites".
SECTION = re.compile(r'\(?(README|CONTRIBUTING\.md|docs/[\w-]+\.md), "([^"\n]+)"')
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
MARKDOWN = ("README.md", "CONTRIBUTING.md",
            *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))


def tracked() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [p for p in listed if (ROOT / p).is_file()]


def python_prose(text: str) -> str:
    """The comments and docstrings of a Python source."""
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(ast.get_docstring(node, clean=False) or "")
    return "\n".join(parts)


def prose(path: str) -> str:
    if path.endswith(".py"):
        return python_prose((ROOT / path).read_text())
    if path.endswith(".md"):
        return (ROOT / path).read_text()
    if path.endswith((".yaml", ".yml", ".toml")) or Path(path).name == "Makefile":
        return "\n".join(line.split("#", 1)[1] for line in (ROOT / path).read_text().splitlines()
                         if "#" in line)
    return ""


def exists(path: str) -> bool:
    """A path from the root or from converter/; upper-case words (NAME, DIR) and <...>
    stand for any name."""
    path = path.rstrip("/.")
    if ELSEWHERE.search(path):
        return True
    pattern = re.sub(r"<[^>/]*>|\b[A-Z][A-Z0-9_]+\b", "*", path)
    return any(any(base.glob(pattern)) if "*" in pattern else (base / path).exists()
               for base in (ROOT, ROOT / "converter"))


def named_paths() -> dict[str, set[str]]:
    """{path named in prose: the files naming it}."""
    found: dict[str, set[str]] = {}
    for path in tracked():
        if path.startswith("tests/fixtures/"):
            continue
        for match in PATH.finditer(prose(path)):
            found.setdefault(match.group(1), set()).add(path)
    return found


def test_every_path_named_in_comments_and_docs_exists():
    found = named_paths()
    assert len(found) > 50  # the scan sees the references
    missing = {p: sorted(by) for p, by in found.items() if not exists(p)}
    assert not missing, missing


@pytest.mark.parametrize("stale", ["converter/weight_table.yaml", "converter/weights.py",
                                   "converter/build.py"])
def test_a_stale_path_would_be_found(stale):
    """The paths the docs once named wrongly are refused by the check above."""
    assert PATH.search(f"see {stale} for it").group(1) == stale
    assert not exists(stale)


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_section_named_in_comments_and_docs_exists():
    named = [(doc, section, path) for path in tracked() if not path.startswith("tests/fixtures/")
             for doc, section in SECTION.findall(prose(path))]
    assert len(named) >= 5
    for doc, section, path in named:
        text = (ROOT / ("README.md" if doc == "README" else doc)).read_text()
        headings = re.findall(r"^#+ (.+)$", text, re.M)
        assert any(h.startswith(section) for h in headings), f"{path}: {doc}, {section!r}"


def test_links_between_docs_land():
    for doc in MARKDOWN:
        text = (ROOT / doc).read_text()
        for target, anchor in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            linked = (ROOT / doc).parent / target
            assert linked.exists(), f"{doc}: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                assert anchor[1:] in {heading_anchor(h) for h in headings}, \
                    f"{doc}: {target}{anchor}"


def test_the_readme_is_a_front_page():
    """Install and the first conversion on the first screen; no one machine's figures."""
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 250
    first_screen = "\n".join(lines[:40])
    assert "pip install" in first_screen and "fomm-convert build" in first_screen
    assert not re.search(r"this (2-core )?machine|load average|frames/s|\d ms\b", text)
