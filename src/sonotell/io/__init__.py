"""Reading narrated scans from disk: video (PyAV, DICOM cine), audio, manifests, caches."""
