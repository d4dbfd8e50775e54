import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.io.crop import check_roi, crop, detect_roi, detect_video_roi, sample_frames
from tests.conftest import write_video


def test_detect_roi_drops_static_header(moving_frames):
    # rows 0-5 are a static bar and rows 6-7 static black: the moving region is rows 8-63
    assert detect_roi(moving_frames) == (0, 8, 80, 64)
    assert crop(moving_frames, (0, 8, 80, 64)).shape == (20, 56, 80)


def test_detect_roi_finds_sector_among_overlays():
    rng = np.random.default_rng(1)
    t, h, w = 12, 96, 128
    frames = np.zeros((t, h, w), np.uint8)
    frames[:, 2:10, 4:70] = 220  # text bar
    frames[:, 20:90:8, 120:124] = 255  # ruler ticks
    yy, xx = np.mgrid[:h, :w]
    sector = (np.abs(np.degrees(np.arctan2(xx - 64, yy + 10))) < 30) & (yy > 15) & (yy < 88)
    for i in range(t):
        speckle = rng.integers(30, 200, (h, w))
        frames[i][sector] = speckle[sector]
    frames[::2, 10, 100] = 255  # one blinking pixel (a cursor) must not count
    ys, xs = np.nonzero(sector)
    assert detect_roi(frames) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_still_or_static_video_is_not_cropped():
    still = np.full((5, 20, 20), 90, np.uint8)
    assert detect_roi(still) is None
    assert detect_roi(still[:1]) is None


def test_check_roi_clips_and_rejects():
    assert check_roi((-3, 0, 500, 40), 80, 64) == (0, 0, 80, 40)
    with pytest.raises(InputError, match="v.mp4: roi .* lies outside the 80x64 frame"):
        check_roi((90, 0, 120, 10), 80, 64, "v.mp4")


def test_roi_from_encoded_video_and_even_sampling(tmp_path, moving_frames):
    path = write_video(tmp_path / "m.mp4", np.concatenate([moving_frames] * 5), fps=25)
    frames, n = sample_frames(path, n_samples=8)
    assert n == 100 and 8 <= len(frames) < 16
    x0, y0, x1, y1 = detect_video_roi(path)
    assert (x0, x1, y1) == (0, 80, 64) and 6 <= y0 <= 9  # the codec blurs the bar's edge a little


@pytest.mark.shared
@pytest.mark.parametrize(
    "name", ["Reg_pat3Image_135128.mpeg", "Pneu_from_article_rippey.mp4", "Pneu_Avi_Video_005.mp4"]
)
def test_real_clip_inside_a_scanner_screen(shared_data, tmp_path, name):
    """Real lung ultrasound pasted into a screen with a text bar, a ruler and a logo, then encoded."""
    from PIL import Image, ImageDraw

    path = next((shared_data / "pocus" / "pocus_videos").glob(f"*/{name}"))
    clip, _ = sample_frames(path, 24)
    clip = np.stack([np.asarray(Image.fromarray(f).resize((240, 240))) for f in clip])
    screen = np.zeros((len(clip), 320, 400), np.uint8)
    text = Image.new("L", (400, 320))
    draw = ImageDraw.Draw(text)
    draw.text((10, 8), "PATIENT 0042  LUNG  C5-2  12 cm  GAIN 54  FR 25 Hz", fill=230)
    for y in range(50, 300, 20):
        draw.line([(352, y), (362, y)], fill=255)  # depth ruler
    draw.rectangle([370, 280, 395, 310], fill=180)  # logo
    screen[:] = np.asarray(text)
    screen[:, 50:290, 80:320] = np.maximum(screen[:, 50:290, 80:320], clip)
    video = write_video(tmp_path / "screen.mp4", screen, fps=25)
    x0, y0, x1, y1 = detect_video_roi(video)
    # the image sits at x 80-320, y 50-290; the overlay is >= 30 px away from it. The codec
    # smears flicker a few pixels past the image's edge, hence the 4 px tolerance.
    assert x0 >= 76 and y0 >= 46 and x1 <= 324 and y1 <= 294
    assert (x1 - x0) * (y1 - y0) >= 0.8 * 240 * 240  # most of the real image
