"""Report figures: every plot function writes a real (non-blank) PNG and a PDF; Chinese renders out of the box."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from lexalign.report import figures
from lexalign.report.readers import Summary


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
    series = {
        m: [Summary(v - k / 200, v - k / 200 - 0.05, v - k / 200 + 0.05, 0.95) for k in ks]
        for m, v in (("vanilla", 0.5), ("sft", 0.7))
    }
    series["dpo"] = [Summary(0.6 - k / 200) for k in ks]  # no CI: a line without a band
    png = figures.precision_at_k("zh", ks, {"model-a": series, "model-b": series}, tmp_path / "zh", ci_label="95% CI")
    assert png == tmp_path / "zh.png"
    assert_real_png(png)
    assert_pdf(tmp_path / "zh.pdf")


def test_profile_violins(tmp_path):
    rng = np.random.default_rng(0)
    human = {
        "concreteness": rng.normal(3.5, 0.5, 30),
        "valence": rng.normal(5.5, 1, 30),
        "arousal": rng.normal(4.5, 1, 30),
    }
    models = {
        ("m", "vanilla"): {k: v + 0.3 for k, v in human.items()},
        ("m", "sft"): {"concreteness": human["concreteness"][:1]},
    }
    png = figures.profile("en", human, models, ("concreteness", "valence", "arousal"), tmp_path / "en", formats=["png"])
    assert_real_png(png)
    assert not (tmp_path / "en.pdf").exists()


def test_tension_scatter(tmp_path):
    rng = np.random.default_rng(1)
    panel = pl.DataFrame(
        {
            "item": [f"Q{i}" for i in range(50)],
            "dist_first": rng.uniform(0, 0.6, 50),
            "dist_second": rng.uniform(0, 0.6, 50),
        }
    )
    panels = {"vanilla": panel, "sft": panel.with_columns(pl.col("dist_second") * 0.5)}
    png = figures.tension("m", "zh", panels, tmp_path / "m.zh", ("United States", "China"), definition="study")
    assert_real_png(png)
    assert_pdf(tmp_path / "m.zh.pdf")


def test_training_curves(tmp_path):
    sft = [{"loss": 2.0 / s, "step": s} for s in range(1, 20)] + [{"eval_loss": 0.5, "step": 19}]
    rl = [{"loss": 0.01, "reward": 0.1 * s, "step": s} for s in range(1, 20)]
    assert_real_png(figures.training_curves("m", "en", {"sft": sft, "rl": rl}, tmp_path / "m.en"))
    assert_real_png(figures.training_curves("m", "en", {"sft": sft}, tmp_path / "loss-only"))


def test_the_font_package_ships_a_cjk_font():
    """The dependency's font file is there and holds the glyphs of Chinese labels."""
    from matplotlib import ft2font

    path = figures.packaged_font_file()
    assert path is not None and path.is_file(), "pip install -e . installs paperang-p2-fonts-cjk"
    font = ft2font.FT2Font(str(path))
    assert font.family_name == "WenQuanYi Micro Hei"
    assert all(font.get_char_index(ord(ch)) for ch in "中文标签词语联想")


def test_chinese_renders_out_of_the_box_without_missing_glyphs(tmp_path, monkeypatch):
    """With no system CJK font at all (a fresh machine), Chinese labels render from the packaged font."""
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    latin = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", latin)
    try:
        assert figures.configure_fonts(force=True) == "WenQuanYi Micro Hei"
        assert figures.style()["font.family"] == ["DejaVu Sans", "WenQuanYi Micro Hei"]
        with warnings.catch_warnings(), plt.rc_context(figures.style()):
            warnings.simplefilter("error")  # a missing glyph is a UserWarning ("Glyph ... missing from font(s)")
            fig, ax = plt.subplots()
            ax.set_title("中文标签 dog 相同，相似")
            ax.set_xlabel("联想词")
            figures.save(fig, tmp_path / "cjk", formats=["png", "pdf"])
        assert_real_png(tmp_path / "cjk.png", min_bytes=2_000, min_ink=0.001)
        assert_pdf(tmp_path / "cjk.pdf")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            figures.tension(
                "m",
                "zh",
                {"sft": pl.DataFrame({"dist_first": [0.1, 0.3], "dist_second": [0.2, 0.1]})},
                tmp_path / "t",
                ("United States", "China"),
            )
    finally:
        monkeypatch.undo()
        figures.configure_fonts(force=True)


def test_preferred_and_system_fonts_come_first(monkeypatch):
    from matplotlib import font_manager

    fake = font_manager.FontEntry(fname="/nonexistent/NotoSansCJK-Regular.ttc", name="Noto Sans CJK SC")
    mine = font_manager.FontEntry(fname="/nonexistent/Mine.ttf", name="My CJK Font")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [*font_manager.fontManager.ttflist, fake, mine])
    try:
        assert figures.configure_fonts(force=True) == "Noto Sans CJK SC"
        assert figures.configure_fonts(["My CJK Font"], force=True) == "My CJK Font"
        assert figures.configure_fonts(["Not Installed"], force=True) == "Noto Sans CJK SC"
    finally:
        monkeypatch.undo()
        figures.configure_fonts(force=True)


def test_without_the_font_package_a_warning_says_how_to_fix_it(monkeypatch, caplog):
    from matplotlib import font_manager

    latin = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", latin)
    monkeypatch.setattr(figures, "packaged_font_file", lambda: None)
    try:
        with caplog.at_level(logging.WARNING, logger="lexalign.report.figures"):
            assert figures.configure_fonts(force=True) is None
        assert any("pip install paperang-p2-fonts-cjk" in r.getMessage() for r in caplog.records)
        assert figures.style()["font.family"] == ["DejaVu Sans"]
    finally:
        monkeypatch.undo()
        figures.configure_fonts(force=True)
