"""Scan videos in the formats archives hold, for the preview tests: MPEG-4 Part 2, H.264, GIF, DICOM cine."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def sweep(n_frames: int = 80, h: int = 120, w: int = 160) -> np.ndarray:
    """(T, H, W) uint8: a bright blob moving left to right over speckle."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n_frames, h, w), np.uint8)
    for i in range(n_frames):
        blob = 150 * np.exp(-(((xx - 20 - 1.5 * i) ** 2) + (yy - h / 2) ** 2) / 200.0)
        out[i] = np.clip(rng.gamma(1.5, 25, (h, w)) + blob, 0, 255).astype(np.uint8)
    return out


def write_h264(path: Path, frames: np.ndarray, fps: int) -> Path:
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {"preset": "ultrafast", "threads": "1"}
        for f in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, axis=2), format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    return path


def write_gif(path: Path, frames: np.ndarray, fps: int) -> Path:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def write_scan_video(kind: str, folder: Path, frames: np.ndarray, fps: int) -> Path:
    """A video of ``kind`` (mpeg4 | h264 | gif | dicom) in ``folder``."""
    from tests.conftest import write_video
    from tests.io.test_ingest import write_dicom_cine

    if kind == "mpeg4":
        return write_video(folder / "scan.mp4", frames, fps=fps)
    if kind == "h264":
        return write_h264(folder / "scan_h264.mp4", frames, fps)
    if kind == "gif":
        return write_gif(folder / "scan.gif", frames, fps)
    if kind == "dicom":
        return write_dicom_cine(folder / "scan.dcm", frames, fps)
    raise ValueError(kind)


def use_video(manifest: Path, scan_id: str, video: Path) -> None:
    """Point the manifest's ``scan_id`` at another video (the same frames and clock)."""
    import dataclasses

    from sonotell.io.manifest import read_manifest, write_manifest

    scans = read_manifest(manifest, check_files=False).scans
    write_manifest(manifest, [dataclasses.replace(s, video_path=video) if s.scan_id == scan_id else s for s in scans])
