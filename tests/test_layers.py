"""The layers import only downward (README "Architecture"): checked on the source with ``ast``.

Every ``import`` counts, also those inside functions: a lazy import is still a dependency.
"""

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sonotell"

# lower rank = lower layer; a module may import its own layer and those below
RANK = {
    "types": 0,
    "errors": 0,
    "config": 0,
    "files": 0,
    "progress": 0,
    "seeding": 0,
    "safeload": 0,
    "engine": 0,
    "__init__": 0,
    "io": 1,
    "labels": 1,
    "speech": 2,
    "data": 2,
    "models": 3,
    "losses": 3,
    "train": 3,
    "methods": 4,
    "eval": 4,
    "review": 4,
    "bench": 4,
    "demo": 5,
    "cli": 5,
    "__main__": 5,
}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def sonotell_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "sonotell"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "sonotell":
            found.add(node.module)
    return found


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        me = layer(".".join(rel.parts))
        for target in sonotell_imports(path):
            if target == "sonotell":
                continue
            them = layer(target)
            if RANK[them] > RANK[me]:
                bad.append(f"{'/'.join(rel.parts)}.py ({me}) imports {target} ({them})")
    return bad


def test_every_package_has_a_layer():
    tops = {
        p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert tops <= set(RANK), tops - set(RANK)


def test_layers_import_only_downward():
    assert upward_imports() == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "sonotell"
    (fake / "io").mkdir(parents=True)
    (fake / "io" / "x.py").write_text("def f():\n    from sonotell.methods import pretrain\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert upward_imports() == ["sonotell/io/x.py (io) imports sonotell.methods (methods)"]
