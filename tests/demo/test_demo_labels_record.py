"""The demo's labels folder carries the run record of `sonotell label`: another recipe is refused there."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sonotell.cli import app
from sonotell.demo import labels_config, record_labels_run
from sonotell.files import RUN_RECORD_NAME, check_run_fingerprint
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.pipeline import recipe_fingerprint
from tests.methods.owndata_helpers import make_user_data


def test_label_with_another_config_on_a_demo_folder_is_refused(tmp_path):
    manifest, _ = make_user_data(tmp_path / "data", with_labels=False)
    labels = tmp_path / "demo" / "labels"
    record_labels_run(labels, labels_config(), "abdominal")
    record = json.loads((labels / RUN_RECORD_NAME).read_text())
    assert record == {
        "fingerprint": recipe_fingerprint(labels_config(), load_lexicon("abdominal")),
        "what": "sonotell label",
    }
    args = ["label", str(manifest), "-l", "abdominal", "-o", str(labels), "--config", "speech_light"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0 and "holds outputs of another configuration" in str(r.exception or r.output)
    check_run_fingerprint(labels, record["fingerprint"])  # the demo's own recipe resumes there
