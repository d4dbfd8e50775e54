"""Tell -> labels: narration to time-aligned frame labels (see docs/speech.md).

Stages, one module each: ``clean`` -> ``vad`` -> ``diarize`` -> ``transcribe`` (backends; ``keywords``
builds their vocabulary from a ``lexicon``) -> ``spot`` -> ``align``; ``pipeline`` streams a
recording through them; ``batch`` labels many scans (``label_scans``, on the local or Ray engine);
``stream`` reads audio in chunks.

Example:
    >>> from sonotell.speech.pipeline import SpeechPipeline  # doctest: +SKIP
    >>> SpeechPipeline.from_config("speech", "lung").label_scan(scan).frames.present_labels(40)  # doctest: +SKIP
"""
