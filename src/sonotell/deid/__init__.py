"""De-identification for sharing: ``sonotell deid`` writes a copy of scans, narration and labels without identifiers.

One module per stage: ``frames`` (sector and burned-in text, OCR), ``dicom`` (tags), ``speech`` (spoken identifiers),
``subjects`` (keyed-hash pseudonyms), ``report`` (``deid_report.json``); ``pipeline`` runs them and ``check``s a copy.
"""
