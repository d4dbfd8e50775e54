"""Property-based fuzzing: any manifest, lexicon or config gives a result or the project's own error."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonotell.config import apply_overrides, load_config
from sonotell.errors import SonotellError
from sonotell.io.manifest import read_manifest
from sonotell.speech.lexicon import Lexicon, load_lexicon
from tests.review.conftest import _demo_set  # noqa: F401  (fixture)

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
    before = _files(root)
    try:
        manifest = read_manifest(path)
    except SonotellError as e:
        _one_line(e, path)
        return
    finally:
        assert _files(root) == before  # reading a manifest writes nothing
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
        before = _files(root)
        try:
            load_lexicon(root / "lex.yaml")
        except SonotellError as e:
            _one_line(e, root / "lex.yaml")
        try:
            load_config("pipelines", root / "cfg.yaml")
        except SonotellError as e:
            _one_line(e, root / "cfg.yaml")
        assert _files(root) == before


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


# -- review files, lexicon suggestions and Label Studio imports (issue 21 item 8) ---------------------------------
# Each example gets a fresh copy of a small labels folder; whatever the file holds, the tools give a result or one
# InputError line naming the file, and a failure writes nothing.

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, 0.5, 1.0, 7.9, 8.0, 1e7, -1.0, True]),
)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=6), st.lists(st.integers(), max_size=2), st.just({}))
fields = st.one_of(numbers, junk)
event_doc = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.sampled_from(["accepted", "edited", "rejected", "added"]), junk),
        "label": st.one_of(st.sampled_from(["liver", "kidney", "spleen", "pancreas", ""]), junk, numbers),
        "start_s": fields,
        "end_s": fields,
        "negated": st.one_of(st.booleans(), junk),
        "term": st.one_of(st.text(max_size=6), junk),
        "speaker": junk,
        "rev": st.one_of(st.integers(-2, 5), junk),
        "by": junk,
        "base": st.one_of(
            st.none(),
            junk,
            st.fixed_dictionaries({"label": st.sampled_from(["liver", 3]), "start_s": fields, "end_s": fields}),
        ),
    },
)
review_docs = st.one_of(
    yaml_values,
    st.fixed_dictionaries(
        {"format": st.sampled_from(["sonotell.review/1", "sonotell.review/1", "other"])},
        optional={
            "decisions": st.one_of(
                st.dictionaries(st.sampled_from(["e1", "u1", "e2", "x"]), st.one_of(event_doc, junk), max_size=3), junk
            ),
            "reviewed": st.one_of(st.booleans(), junk),
            "reviewed_by": junk,
            "history": st.one_of(st.lists(junk, max_size=2), junk),
        },
    ),
)


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(error: Exception, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path.parent)), message


@pytest.fixture(scope="module")
def demo_labels(tmp_path_factory, request) -> Path:
    """The review tests' labels folder (2 scans, with words and events), made once for this module."""
    return request.getfixturevalue("_demo_set") / "labels"


def _fresh_copy(labels: Path) -> Path:
    import shutil

    root = _tmp()
    shutil.copytree(labels, root / "labels")
    return root / "labels"


@SETTINGS
@given(doc=review_docs, raw=st.binary(max_size=40), use_raw=st.booleans(), dump_nan=st.booleans())
def test_review_file_readers(demo_labels, doc, raw, use_raw, dump_nan):
    import json

    from sonotell.errors import InputError
    from sonotell.review.store import export_reviewed, load_review, reviewed_truth
    from sonotell.review.suggest import suggest

    labels = _fresh_copy(demo_labels)
    path = labels / "scan_a.review.json"
    path.write_bytes(raw if use_raw else json.dumps(doc, allow_nan=dump_nan, default=str).encode())
    before = _files(labels)
    out = labels.parent / "exported"
    for run in (
        lambda: load_review(labels, "scan_a"),
        lambda: suggest(labels),
        lambda: reviewed_truth(labels),
        lambda: export_reviewed(labels, out),
    ):
        try:
            run()
        except InputError as e:
            _one_line(e, path)
            assert str(e).startswith(str(path))
            assert not out.exists()  # an export that fails has written nothing
        assert _files(labels) == before  # the review tools never write into the labels folder


region_values = st.fixed_dictionaries(
    {},
    optional={
        "ranges": st.one_of(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries({"start": fields, "end": fields}),
                    junk,
                    st.fixed_dictionaries({"start": st.integers(-3, 90), "end": st.integers(-3, 90)}),
                ),
                max_size=2,
            ),
            junk,
        ),
        "timelinelabels": st.one_of(st.lists(st.sampled_from(["liver", "no spleen", "unicorn", 5]), max_size=2), junk),
    },
)
regions = st.fixed_dictionaries(
    {"type": st.one_of(st.just("timelinelabels"), junk)},
    optional={"id": st.one_of(st.sampled_from(["r1", "r2", 3]), junk), "value": st.one_of(region_values, junk)},
)
annotations = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(0, 3), junk),
        "was_cancelled": st.one_of(st.booleans(), junk),
        "updated_at": st.one_of(st.sampled_from(["2026-01-01", "2026-02-01"]), junk),
        "completed_by": st.one_of(junk, st.fixed_dictionaries({"email": junk})),
        "result": st.one_of(st.lists(st.one_of(regions, junk), max_size=3), junk),
    },
)
tasks = st.one_of(
    st.fixed_dictionaries(
        {
            "data": st.one_of(
                st.fixed_dictionaries({"scan_id": st.one_of(st.sampled_from(["scan_a", "scan_b", "ghost"]), junk)}),
                junk,
            )
        },
        optional={"annotations": st.one_of(st.lists(st.one_of(annotations, junk), max_size=2), junk)},
    ),
    junk,
)


@SETTINGS
@given(export=st.one_of(st.lists(tasks, max_size=3), yaml_values), raw=st.binary(max_size=40), use_raw=st.booleans())
def test_label_studio_import(demo_labels, export, raw, use_raw):
    import json

    from sonotell.errors import InputError
    from sonotell.review.labelstudio import import_label_studio
    from sonotell.review.store import load_review

    labels = _fresh_copy(demo_labels)
    path = labels.parent / "export.json"
    path.write_bytes(raw if use_raw else json.dumps(export, default=str).encode())
    before = _files(labels)
    try:
        counts = import_label_studio(path, labels)
    except InputError as e:
        _one_line(e, path)
        assert _files(labels) == before  # all or nothing
        return
    for scan_id in ("scan_a", "scan_b"):  # whatever was written is a valid review inside the scan (8 s)
        review = load_review(labels, scan_id)
        for d in review["decisions"].values():
            assert 0 <= d["start_s"] <= d["end_s"] <= 8.0
    assert counts["scans"] == sum((labels / f"{s}.review.json").exists() for s in ("scan_a", "scan_b"))
