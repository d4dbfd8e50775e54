"""DICOM: tags scrubbed per the basic confidentiality profile (PS3.15 E.1), pixels blanked, identifiers pseudonymised.

``dicognito`` (on pydicom) replaces names, ids, addresses and UIDs and shifts dates and times. One dicognito
anonymiser is made per patient, seeded from the keyed hash of the patient's id: the same patient's files get the same
date offset and the same new UIDs (series and studies stay joined), other patients get other offsets. Then this module
removes what the basic profile removes and dicognito keeps (``REMOVE``), empties what it empties (``EMPTY``), drops
private tags, writes the subject pseudonym as PatientID/PatientName, blanks the pixels (outside the sector and burned-in
text, ``frames``; every frame of a multi-frame object) and only then sets BurnedInAnnotation to NO.

``profile_violations`` lists what is still identifying in a de-identified file (given the original, also values that
were not changed): the benchmark and ``sonotell deid check`` use it.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np

from sonotell.errors import InputError
from sonotell.files import atomic_path

# Basic profile "X" (remove) attributes found in ultrasound objects; dicognito replaces some of them with fakes.
REMOVE = (
    "InstitutionAddress",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "StationName",
    "PhysiciansOfRecord",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "AdmittingDiagnosesDescription",
    "DerivationDescription",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientAddress",
    "PatientMotherBirthName",
    "PatientTelephoneNumbers",
    "MilitaryRank",
    "BranchOfService",
    "MedicalRecordLocator",
    "EthnicGroup",
    "Occupation",
    "AdditionalPatientHistory",
    "PatientComments",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "DeviceSerialNumber",
    "ProtocolName",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "RequestingPhysician",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
    "ScheduledProcedureStepDescription",
    "ResponsiblePerson",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientInsurancePlanCodeSequence",
)
# Basic profile "Z" (empty or dummy): PatientName/PatientID get the subject pseudonym instead.
EMPTY = ("PatientBirthDate", "AccessionNumber", "StudyID", "ReferringPhysicianName", "PatientSex")
DATES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate")
UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def dicom_seed(key: bytes, patient_id: str) -> str:
    return hmac.new(key, f"dicom:{patient_id}".encode(), hashlib.sha256).hexdigest()


class DicomScrubber:
    """Scrubs datasets; one dicognito anonymiser per patient (see the module's docstring)."""

    def __init__(self, key: bytes, remove_private_tags: bool = True):
        self.key, self.remove_private_tags = key, remove_private_tags
        self._by_patient: dict[str, object] = {}

    @property
    def name(self) -> str:
        from importlib.metadata import version

        return f"dicognito {version('dicognito')} + sonotell basic profile"

    def scrub(self, ds, subject_pseudonym: str) -> list[tuple[str, str]]:
        """Scrub ``ds`` in place; return ``(kind, keyword)`` for each change (for the report)."""
        from dicognito.anonymizer import Anonymizer

        patient = str(getattr(ds, "PatientID", "") or "")
        changes: list[tuple[str, str]] = []
        if self.remove_private_tags:
            private = [e.tag for e in ds.iterall() if e.tag.is_private]
            if private:
                ds.remove_private_tags()
                changes += [("dicom_private", f"{len(private)} private elements")]
        before = {k: str(ds.get(k, "")) for k in (*UIDS, *DATES)}
        anonymizer = self._by_patient.setdefault(patient, Anonymizer(seed=dicom_seed(self.key, patient)))
        anonymizer.anonymize(ds)
        for k, old in before.items():
            if old and str(ds.get(k, "")) != old:
                changes.append(("dicom_uid" if k in UIDS else "dicom_date", k))
        for k in REMOVE:
            if k in ds:
                del ds[k]
                changes.append(("dicom_tag", k))
        for k in EMPTY:
            if k in ds and str(ds[k].value):
                ds[k].value = ""
                changes.append(("dicom_tag", k))
        ds.PatientID = subject_pseudonym
        ds.PatientName = subject_pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "sonotell deid: basic profile, dates shifted per patient"
        return changes


def read_dicom(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path))
    except Exception as e:
        raise InputError(path, f"unreadable DICOM ({e.__class__.__name__}: {e})") from None


def dicom_frames(ds, path: Path) -> np.ndarray:
    """Pixels as (T, H, W) or (T, H, W, 3) uint8, RGB for colour (YBR converted)."""
    try:
        arr = ds.pixel_array
    except Exception as e:
        raise InputError(path, f"pixel data cannot be decoded, so burned-in text cannot be removed ({e})") from None
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    colour = int(getattr(ds, "SamplesPerPixel", 1) or 1) == 3
    if n_frames == 1:
        arr = arr[None]
    if colour and str(getattr(ds, "PhotometricInterpretation", "")).startswith("YBR"):
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, str(ds.PhotometricInterpretation), "RGB")
    if arr.dtype != np.uint8:
        raise InputError(path, f"{arr.dtype} pixels: only 8-bit ultrasound is supported")
    return np.ascontiguousarray(arr)


def set_frames(ds, frames: np.ndarray) -> None:
    """Store (T, H, W[, 3]) uint8 frames as uncompressed little-endian pixel data."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds.PixelData = (frames[0] if len(frames) == 1 and "NumberOfFrames" not in ds else frames).tobytes()
    if frames.ndim == 4:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds["PixelData"].VR = "OB"
    if "NumberOfFrames" in ds:
        ds.NumberOfFrames = len(frames)


def write_dicom(ds, path: Path) -> Path:
    with atomic_path(path) as tmp:
        ds.save_as(str(tmp), enforce_file_format=True)
    return path


def profile_violations(ds, original=None) -> list[str]:
    """What in ``ds`` breaks the basic profile; with the ``original`` dataset also values left unchanged."""
    bad = [f"{k} present" for k in REMOVE if k in ds and str(ds[k].value)]
    bad += [f"{k} not empty" for k in EMPTY if k in ds and str(ds[k].value)]
    if any(e.tag.is_private for e in ds.iterall()):
        bad.append("private tags present")
    if str(getattr(ds, "PatientIdentityRemoved", "")) != "YES":
        bad.append("PatientIdentityRemoved is not YES")
    if str(getattr(ds, "BurnedInAnnotation", "NO")).upper() == "YES":
        bad.append("BurnedInAnnotation is YES")
    if original is not None:
        for k in (*UIDS, *DATES, "PatientID", "PatientName"):
            old = str(original.get(k, "") or "")
            if old and str(ds.get(k, "") or "") == old:
                bad.append(f"{k} unchanged")
    return bad
