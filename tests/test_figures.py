"""Report figures: every plot function writes a real (non-blank) PNG and a PDF; CJK font fallback."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lexalign import figures
from lexalign.aggregate import Estimate


def assert_real_png(path: Path, min_bytes: int = 5_000, min_ink: float = 0.01) -> None:
    """The file exists, is not tiny, and is not a blank canvas (some share of non-white pixels)."""
    import matplotlib.image as mpimg

    assert path.is_file(), path
    assert path.stat().st_size >= min_bytes, (path, path.stat().st_size)
    pixels = mpimg.imread(path)[..., :3]
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    ink = float((pixels.min(axis=2) < 0.9).mean())
    assert ink >= min_ink, (path, ink)
    assert pixels.std() > 0.05, path


def assert_pdf(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 1_000, path


def test_precision_at_k_curves(tmp_path):
    ks = (5, 10, 20, 30, 40, 50)
    series = {m: [Estimate(v - k / 200, v - k / 200 - 0.05, v - k / 200 + 0.05) for k in ks] for m, v in (("vanilla", 0.5), ("sft", 0.7))}
    series["dpo"] = [Estimate(0.6 - k / 200) for k in ks]  # no CI: a line without a band
    png = figures.precision_at_k("zh", ks, {"model-a": series, "model-b": series}, tmp_path / "zh")
    assert png == tmp_path / "zh.png"
    assert_real_png(png)
    assert_pdf(tmp_path / "zh.pdf")


def test_profile_violins(tmp_path):
    rng = np.random.default_rng(0)
    human = {"concreteness": rng.normal(3.5, 0.5, 30), "valence": rng.normal(5.5, 1, 30), "arousal": rng.normal(4.5, 1, 30)}
    models = {"m\nvanilla": {k: v + 0.3 for k, v in human.items()}, "m\nSFT": {"concreteness": human["concreteness"][:1]}}
    png = figures.profile("en", human, models, ("concreteness", "valence", "arousal"), tmp_path / "en", formats=["png"])
    assert_real_png(png)
    assert not (tmp_path / "en.pdf").exists()


def test_tension_scatter(tmp_path):
    rng = np.random.default_rng(1)
    panel = pl.DataFrame({"item": [f"Q{i}" for i in range(50)], "dist_us": rng.uniform(0, 0.6, 50), "dist_cn": rng.uniform(0, 0.6, 50)})
    png = figures.tension("m", "zh", {"vanilla": panel, "sft": panel.with_columns(pl.col("dist_cn") * 0.5)}, tmp_path / "m.zh")
    assert_real_png(png)
    assert_pdf(tmp_path / "m.zh.pdf")


def test_training_curves(tmp_path):
    sft = [{"loss": 2.0 / s, "step": s} for s in range(1, 20)] + [{"eval_loss": 0.5, "step": 19}]
    rl = [{"loss": 0.01, "reward": 0.1 * s, "step": s} for s in range(1, 20)]
    png = figures.training_curves("m", "en", {"sft": sft, "rl": rl}, tmp_path / "m.en")
    assert_real_png(png)
    loss_only = figures.training_curves("m", "en", {"sft": sft}, tmp_path / "loss-only")
    assert_real_png(loss_only)


def test_no_cjk_font_logs_a_warning(monkeypatch, caplog):
    from matplotlib import font_manager

    latin = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", latin)
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    try:
        with caplog.at_level(logging.WARNING, logger="lexalign.figures"):
            assert figures.configure_fonts(force=True) is None
        assert any("no CJK font found" in r.getMessage() for r in caplog.records)
        assert figures.style()["font.family"] == ["DejaVu Sans"]
    finally:
        monkeypatch.undo()
        figures.configure_fonts(force=True)


def test_cjk_font_is_put_behind_the_default(monkeypatch):
    from matplotlib import font_manager

    fake = font_manager.FontEntry(fname="/nonexistent/NotoSansCJK-Regular.ttc", name="Noto Sans CJK SC")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [*font_manager.fontManager.ttflist, fake])
    try:
        assert figures.configure_fonts(force=True) == "Noto Sans CJK SC"
        assert figures.style()["font.family"] == ["DejaVu Sans", "Noto Sans CJK SC"]
        assert figures.configure_fonts(["My CJK Font"], force=True) == "Noto Sans CJK SC"  # unknown preference falls through
    finally:
        monkeypatch.undo()
        figures.configure_fonts(force=True)


def test_chinese_labels_render_when_a_cjk_font_is_installed(tmp_path):
    found = figures.configure_fonts(force=True)
    if found is None:
        pytest.skip("no CJK font on this machine (e.g. apt-get install fonts-wqy-microhei)")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(), plt.rc_context(figures.style()):
        warnings.simplefilter("error")  # a missing glyph would be a UserWarning
        fig, ax = plt.subplots()
        ax.set_title("中文标签 dog")
        figures.save(fig, tmp_path / "cjk", formats=["png"])
    assert (tmp_path / "cjk.png").is_file()
