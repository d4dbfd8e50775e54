import pytest

from sonotell.eval.labels import (
    evaluate_scan,
    event_scores,
    frame_accuracy,
    match_events,
    negation_errors,
    speaker_coverage,
    summarise,
    term_wer,
    term_word_pairs,
    truth_frame_labels,
)


def ev(label, start, end=None, negated=False, speaker="clinician"):
    return {
        "label": label,
        "term": label,
        "start_s": start,
        "end_s": end if end is not None else start + 0.4,
        "negated": negated,
        "speaker": speaker,
    }


def test_event_prf_worked_example():
    truth = [
        ev("liver", 1.0),
        ev("spleen", 3.0),
        ev("kidney", 5.0),
        ev("liver", 8.0, speaker="patient"),
        ev("bladder", 9.0, negated=True),
    ]
    pred = [ev("liver", 1.2), ev("spleen", 3.7), ev("kidney", 5.1), ev("kidney", 5.3), ev("bladder", 9.0, negated=True)]
    s = event_scores(pred, truth, tolerance_s=0.5)
    # targets: liver@1, spleen@3, kidney@5 (the patient's and the negated mention are not targets)
    # hits: liver (0.2 s), kidney (0.1 s); spleen is 0.7 s late; the 2nd kidney is a false alarm
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert sorted(s["start_errors_s"]) == pytest.approx([0.1, 0.2])


def test_matching_is_one_to_one_closest_first():
    pred = [ev("liver", 1.3), ev("liver", 1.05)]
    truth = [ev("liver", 1.0), ev("liver", 1.5)]
    assert sorted(match_events(pred, truth, 0.5)) == [(0, 1, pytest.approx(0.2)), (1, 0, pytest.approx(0.05))]


def test_negation_errors():
    truth = [ev("effusion", 1.0, negated=True), ev("b", 3.0), ev("c", 5.0, negated=True)]
    pred = [ev("effusion", 1.1), ev("b", 3.0, negated=True), ev("c", 5.0, negated=True)]
    assert negation_errors(pred, truth) == {"negated_truths": 2, "missed_negations": 1, "false_negations": 1}


def test_frame_accuracy_and_truth_frames():
    truth_frames = truth_frame_labels(
        [ev("liver", 1.0, 1.4)], "s", fps=10, n_frames=20, config={"before_s": 0.0, "after_s": 0.0}
    )
    assert truth_frames.count("liver") == 5 and truth_frames[10] == "liver"
    pred = ["unlabelled"] * 20
    pred[10:13] = ["liver"] * 3
    pred[0] = "spleen"
    acc = frame_accuracy(pred, truth_frames)
    assert acc == {"n_frames": 20, "correct": 17, "n_labelled": 5, "correct_labelled": 3}
    with pytest.raises(ValueError):
        frame_accuracy(pred[:3], truth_frames)


def test_speaker_coverage_hand_computed():
    truth = [
        {"speaker": "clinician", "start_s": 0.0, "end_s": 2.0},
        {"speaker": "patient", "start_s": 3.0, "end_s": 4.0},
    ]
    pred = [
        {"speaker": "clinician", "start_s": 0.5, "end_s": 2.5},
        {"speaker": "clinician", "start_s": 3.5, "end_s": 3.75},
        {"speaker": "speaker_0", "start_s": 3.75, "end_s": 4.0},
    ]
    c = speaker_coverage(pred, truth)
    assert c == {"clinician_s": 2.0, "clinician_kept_s": 1.5, "other_s": 1.0, "other_rejected_s": 0.75}


def test_term_wer_against_hand_count():
    words = [
        {"text": "pleural", "start_s": 1.0, "end_s": 1.3},
        {"text": "infusion", "start_s": 1.3, "end_s": 1.8},
        {"text": "b", "start_s": 3.0, "end_s": 3.1},
        {"text": "lines", "start_s": 3.1, "end_s": 3.5},
    ]
    truth = [
        {"label": "effusion", "term": "pleural effusion", "start_s": 1.0, "end_s": 1.8},
        {"label": "B-lines", "term": "B-lines", "start_s": 3.0, "end_s": 3.5},
        {"label": "x", "term": "air bronchogram", "start_s": 6.0, "end_s": 6.5},
    ]
    pairs = term_word_pairs(words, truth)
    assert pairs == [("pleural effusion", "pleural infusion"), ("b lines", "b lines"), ("air bronchogram", "")]
    # 6 reference words: 1 substitution + 2 deletions
    assert term_wer(pairs) == pytest.approx(3 / 6)


def test_evaluate_and_summarise_pool_counts():
    truth = {
        "scan_id": "s",
        "events": [ev("Consolidations", 1.0), ev("COVID-19", 1.5)],
        "segments": [{"speaker": "clinician", "start_s": 0.8, "end_s": 1.6}],
    }
    pred = {
        "events": [ev("consolidation", 1.1)],
        "segments": [{"speaker": "clinician", "start_s": 0.8, "end_s": 1.6}],
        "words": [],
        "frame_labels": ["unlabelled"] * 20,
        "info": {"duration_s": 2.0, "elapsed_s": 0.5, "cpu_s": 0.4},
    }
    resolve = {"Consolidations": "consolidation"}.get
    one = evaluate_scan(pred, truth, resolve=resolve, fps=10, n_frames=20, align_config={"before_s": 0, "after_s": 0})
    assert (one["tp"], one["fp"], one["fn"]) == (1, 0, 0)
    assert one["truth_events_outside_lexicon"] == 1  # a diagnosis the lexicon does not cover is not scored
    total = summarise([one, {**one, "tp": 0, "fp": 1, "fn": 1, "start_errors_s": []}])
    assert (total["tp"], total["fp"], total["fn"]) == (1, 1, 1) and total["f1"] == pytest.approx(0.5)
    assert total["median_start_error_s"] == pytest.approx(0.1)
    assert total["real_time_factor"] == pytest.approx(0.25) and total["cpu_real_time_factor"] == pytest.approx(0.2)
    assert total["frame_accuracy"] == pytest.approx(1 - 5 / 20)  # truth labels 1.0-1.4 s = 5 frames, predicted none
