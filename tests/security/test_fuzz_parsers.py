"""Property-based fuzzing: any manifest, lexicon or config gives a result or the project's own error."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonotell.config import apply_overrides, load_config
from sonotell.errors import SonotellError
from sonotell.io.manifest import read_manifest
from sonotell.speech.lexicon import Lexicon, load_lexicon

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=12))
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
cells = st.one_of(
    st.sampled_from(
        ["", "a", "v.mp4", "../../etc/passwd", "/dev/null", "1e999", "nan", "-1", "0,0,5,5", '"q,"', "x\ny", ".."]
    ),
    st.text(alphabet=string.printable, max_size=10),
)
columns = st.lists(
    st.sampled_from(
        [
            "scan_id",
            "subject_id",
            "video_path",
            "audio_path",
            "fps",
            "n_frames",
            "roi",
            "audio_offset_s",
            "width",
            "label",
            "",
        ]
    ),
    min_size=0,
    max_size=6,
)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="sonotell-fuzz-"))


@SETTINGS
@given(
    header=columns,
    rows=st.lists(st.lists(cells, max_size=6), max_size=4),
    raw=st.binary(max_size=60),
    use_raw=st.booleans(),
)
def test_manifest_parser(header, rows, raw, use_raw):
    root = _tmp()
    (root / "v.mp4").write_bytes(b"x")
    path = root / "m.csv"
    if use_raw:
        path.write_bytes(raw)
    else:
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
    try:
        manifest = read_manifest(path)
    except SonotellError:
        return
    for scan in manifest.scans:  # whatever is accepted is safe to use
        assert scan.video_path.is_file() and "/" not in scan.scan_id


@SETTINGS
@given(data=yaml_values, labels=st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), yaml_values, max_size=4))
def test_lexicon_parser(data, labels):
    for doc in (
        data,
        {"labels": labels},
        {"labels": labels, "negation": data, "pronunciations": data, "carriers": data},
    ):
        try:
            Lexicon.from_dict(doc)
        except SonotellError:
            pass


@SETTINGS
@given(
    text=st.one_of(st.text(max_size=80), st.builds(lambda v: yaml.safe_dump(v), yaml_values)),
    raw=st.binary(max_size=40),
)
def test_lexicon_and_config_files(text, raw):
    root = _tmp()
    for content in (text.encode("utf-8", "surrogatepass"), raw):
        for name in ("lex.yaml", "cfg.yaml"):
            (root / name).write_bytes(content)
        try:
            load_lexicon(root / "lex.yaml")
        except SonotellError:
            pass
        try:
            load_config("pipelines", root / "cfg.yaml")
        except SonotellError:
            pass


@SETTINGS
@given(
    cfg=st.dictionaries(st.text(max_size=5), yaml_values, max_size=4),
    overrides=st.lists(st.text(max_size=20), max_size=4),
)
def test_config_overrides(cfg, overrides):
    try:
        apply_overrides(cfg, overrides)
    except SonotellError:
        pass


@SETTINGS
@given(doc=yaml_values, raw=st.binary(max_size=60))
def test_sidecar_metadata_parser(doc, raw):
    import json

    from sonotell.io.ingest import read_sidecar

    root = _tmp()
    (root / "m.json").write_text(json.dumps(doc, default=str))
    (root / "m.csv").write_bytes(raw)
    for name in ("m.json", "m.csv"):
        try:
            read_sidecar(root / name)
        except SonotellError:
            pass
