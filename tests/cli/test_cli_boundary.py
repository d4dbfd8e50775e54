"""What a user sees: Lightning noise filtered unless --verbose, tables that never cut a path."""

import warnings

from rich.console import Console

from sonotell.cli import _root, ui

LIGHTNING = "You defined a `validation_step` but have no `val_dataloader`. Skipping val loop."


def test_unactionable_warnings_are_filtered_unless_verbose():
    for verbose, shown in ((False, []), (True, [LIGHTNING])):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            _root(verbose=verbose)
            warnings.warn(LIGHTNING, UserWarning, stacklevel=1)
            warnings.warn("something a user can act on", UserWarning, stacklevel=1)
        assert [str(w.message) for w in seen] == [*shown, "something a user can act on"]


def test_tables_wrap_long_paths_instead_of_cutting_them(monkeypatch):
    narrow = Console(width=40, record=True)
    monkeypatch.setattr(ui, "Console", lambda: narrow)
    path = "/data/runs/deep_cluster/fold0/seed0/frac0.5/random_two_head/report.json"
    ui.print_table("runs", [{"run": path, "labels": "liver;kidney;spleen;gallbladder;pancreas"}])
    text = narrow.export_text()
    assert "…" not in text
    cells = [line.split("│")[1:3] for line in text.splitlines() if line.startswith("│")]
    assert "".join(c[0].strip() for c in cells) == path  # wrapped over lines, every character kept
    assert "".join(c[1].strip() for c in cells) == "liver;kidney;spleen;gallbladder;pancreas"


def test_cli_choices_are_the_library_names():
    from sonotell.engine import ENGINES
    from sonotell.methods import EXPERIMENTS
    from sonotell.methods.deep_cluster import PRIORS, SEMISUP_METHODS
    from sonotell.methods.pretrain import RECIPES

    assert [r.value for r in ui.Recipe] == list(RECIPES)
    assert {e.value for e in ui.Experiment} == set(EXPERIMENTS)
    assert [m.value for m in ui.SemisupMethod] == list(SEMISUP_METHODS)
    assert [p.value for p in ui.Prior] == list(PRIORS)
    assert [e.value for e in ui.EngineName] == list(ENGINES)
