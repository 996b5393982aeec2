"""Intent case-study arithmetic, and the HTML report as a browser renders it."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from elcrec import train
from elcrec.report import activity_groups, intent_shares, write_report


def test_activity_groups_cut_at_length_quartiles():
    lengths = np.array([5, 5, 6, 7, 8, 9, 12, 20])  # quartiles 5.75, 7.5, 9.75
    groups, cuts = activity_groups(lengths)
    assert cuts == pytest.approx([5.75, 7.5, 9.75])
    assert groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # A length equal to a cut goes to the lower group.
    assert activity_groups(np.array([1, 2, 3, 4, 5]))[0].tolist() == [0, 0, 1, 2, 3]


def test_intent_shares_by_hand():
    intent = np.array([0, 1, 1, 2, 2, 2])
    groups = np.array([0, 0, 1, 1, 1, 3])
    shares = intent_shares(intent, groups, 3)
    np.testing.assert_allclose(shares[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(shares[1], [0.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(shares[2], [0.0, 0.0, 0.0])  # an empty group
    np.testing.assert_allclose(shares[3], [0.0, 0.0, 1.0])


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium (make test installs it from the distribution's packages)")


def test_report_renders_in_headless_chromium(tiny, tmp_path):
    browser = _chromium()
    train(tiny(**{"train.epochs": 3}), tmp_path / "run", progress=False)
    page = write_report(tmp_path / "run", tsne_users=200)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "http" not in text.split("<body>")[1]
    pngs = sorted(p.name for p in (page.parent / "report_figures").glob("*.png"))
    assert pngs == [
        "intent_shares_by_user_activity.png",
        "training_curves.png",
        "user_representations__t_sne.png",
    ]
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    flags += ["--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's own script counted the images that decoded: all three.
    assert re.search(r'data-images="3/3"', dom.stdout), dom.stdout[:500]
    assert "Uncaught" not in dom.stderr  # no script errors on the console
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    # Not blank: plenty of non-white pixels, in more than a few colours.
    assert (pixels.mean(axis=2) < 0.9).mean() > 0.02
    assert len(np.unique((pixels * 255).astype(int).reshape(-1, 3), axis=0)) > 50
