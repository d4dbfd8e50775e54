"""Review and correct speech-derived labels: review files, export, lexicon suggestions, the web app, Label Studio.

A person's decisions live in ``<scan_id>.review.json`` beside the pipeline's label files, which are
never modified; ``export_reviewed`` turns labels + reviews into a labels folder of the same schema
(plus ``source``) that every command taking a labels folder accepts.
"""
