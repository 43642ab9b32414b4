"""Every API number is written once: in prep/core/rules.py (limits) or prep/core/billing.py (the
unit of money and the default price table). Elsewhere in core and in the manifest, code names
the constant; a literal copy would be one more place to forget when EvoLink changes a limit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from prep.core import billing, rules

PACKAGE = Path(__file__).resolve().parent.parent / "prep"
CHECKED = sorted(p for p in (PACKAGE / "core").glob("*.py") if p.name != "rules.py") + [
    PACKAGE / "jobs" / "manifest.py"]

API_NUMBERS = {
    rules.MAX_PROMPT_CHARS, rules.MAX_CALLBACK_URL_CHARS, rules.MAX_FILE_BYTES, rules.MIN_CLIP_MS,
    rules.MAX_CLIP_MS, *rules.INPUT_CAP_MS.values(), rules.UPLOAD_TTL_S, rules.RESULT_TTL_S,
    rules.DEFAULT_FILE_QUOTA, billing.UNITS_PER_CREDIT,
}
# The same numbers as people write them in messages.
API_TEXT = re.compile(r"(?<![\d.])(1,?500|2,?048|1\.65|2\.5 s|10,000|100,000,000|5 s|30 s|2 s|72 h)"
                      r"(?![\d])")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _named_here(path: Path, tree: ast.Module) -> set[int]:
    """Constants that are not copies: billing.py's own UNITS_PER_CREDIT and default PriceTable,
    and frame rates (Fraction(30000, 1001) is NTSC, not the 30 s limit)."""
    allowed = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Fraction"):
            allowed |= {id(arg) for arg in node.args}
    if path.name != "billing.py":
        return allowed
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [
                "UNITS_PER_CREDIT"]:
            allowed.add(id(node.value))
        if isinstance(node, ast.ClassDef) and node.name == "PriceTable":
            allowed |= {id(n.value) for n in node.body if isinstance(n, ast.AnnAssign) and n.value}
    return allowed


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_api_numbers_come_from_their_named_constants(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | _named_here(path, tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in skip:
            continue
        if type(node.value) is int and node.value in API_NUMBERS:
            found.append(f"line {node.lineno}: {node.value}")
        elif isinstance(node.value, str) and (match := API_TEXT.search(node.value)):
            found.append(f"line {node.lineno}: {match.group(0)!r} in {node.value!r}")
    assert not found, f"{path.name} spells out API numbers:\n" + "\n".join(found)
