"""The feature-space figure (paper 000 Figure 9) from a ``features.FeatureSpace``: the plotly figure with hover
thumbnails (script in ``assets/js/``), the standalone HTML, the PNG drawn with PIL from the same data, and the
exports (PNG, HTML, group CSV, JSON)."""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import workspace
from .drawing import load_font
from .features import PANEL_TITLES, PANELS, THUMB, FeatureSpace, Group, group_stats


_JS = Path(__file__).resolve().parents[2] / "assets" / "js"
HOVER_JS = (_JS / "feature_hover.js").read_text()
# In the app: the hover box script polls for the plot (gr.Plot re-renders it) and (re)attaches the handlers.
APP_HOVER_JS = HOVER_JS + (_JS / "feature_hover_app.js").read_text()
STANDALONE_HOVER_JS = HOVER_JS + (_JS / "feature_hover_standalone.js").read_text()


def _sprite(thumbs: np.ndarray, quality: int = 80) -> dict:
    """One JPEG data URI holding ``thumbs`` in a grid."""
    k = len(thumbs)
    cols = max(1, int(math.ceil(math.sqrt(k))))
    rows = int(math.ceil(k / cols))
    sheet = np.zeros((rows * THUMB, cols * THUMB, 3), np.uint8)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        sheet[r * THUMB:(r + 1) * THUMB, c * THUMB:(c + 1) * THUMB] = t
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, format="JPEG", quality=quality)
    return {"uri": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), "cell": THUMB,
            "cols": cols, "rows": rows}


def _group_sprites(space: FeatureSpace) -> tuple[dict, dict]:
    """({sprite id: sprite}, {(key, panel): (sprite id, thumb index per shown point)}); groups that share thumbnails
    (the 'all' group in both panels) share one sprite."""
    sprites, per_group, by_source = {}, {}, {}
    for g in space.groups:
        if g.thumbs is None or g.thumb_of is None or g.shown is None:
            continue
        idx = g.thumb_of[g.shown]
        used = np.unique(idx[idx >= 0])
        if not len(used):
            continue
        ident = (id(g.thumbs), tuple(used[:50]), len(used))
        if ident not in by_source:
            sid = f"s{len(sprites)}"
            sprites[sid] = _sprite(g.thumbs[used])
            by_source[ident] = (sid, {int(u): i for i, u in enumerate(used)})
        sid, remap = by_source[ident]
        per_group[(g.key, g.panel)] = (sid, np.array([remap.get(int(i), -1) for i in idx], dtype=np.int64))
    return sprites, per_group


def _ellipse_xy(g: Group) -> np.ndarray | None:
    return g.ellipse.points() if g.ellipse is not None else None


def make_figure(space: FeatureSpace, height: int = 620, thumbnails: bool = True):
    """The two-panel plotly figure (go.Scattergl points, go.Scatter ellipses); a legend entry toggles a group in both
    panels."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ev = space.explained
    fig = make_subplots(rows=1, cols=2, subplot_titles=[PANEL_TITLES[p] for p in PANELS], shared_yaxes=True,
                        horizontal_spacing=0.05)
    sprites, per_group = _group_sprites(space) if thumbnails else ({}, {})
    in_legend: set[str] = set()
    order = {"all": 0, "real_on": 1, "real_off": 2, "pseudo": 3}
    for g in sorted(space.groups, key=lambda g: order.get(g.key, 4)):
        col = PANELS.index(g.panel) + 1
        shown = g.shown if g.shown is not None else np.arange(g.n)
        sid, tidx = per_group.get((g.key, g.panel), (None, np.full(len(shown), -1)))
        custom = np.empty((len(shown), 2), dtype=object)
        custom[:, 0] = tidx
        custom[:, 1] = [g.info[i] for i in shown]
        is_all = g.key == "all"
        legend_name = "all data" if is_all else g.label
        fig.add_trace(go.Scattergl(
            x=g.xy[shown, 0], y=g.xy[shown, 1], mode="markers", name=legend_name, legendgroup=g.key,
            uid=f"{g.key}|{g.panel}|points",
            showlegend=g.key not in in_legend, customdata=custom, meta={"group": sid},
            marker={"color": g.color, "size": 4 if is_all else 6, "opacity": 0.35 if is_all else 0.8,
                    "line": {"width": 0}},
            hovertemplate=f"<b>{_esc(legend_name)}</b><br>%{{customdata[1]}}<br>PC1 %{{x:.3g}}, PC2 %{{y:.3g}}"
                          "<extra></extra>"), row=1, col=col)
        in_legend.add(g.key)
        pts = _ellipse_xy(g)
        if pts is not None:
            fig.add_trace(go.Scatter(
                x=pts[:, 0], y=pts[:, 1], mode="lines", name=f"{legend_name} ellipse", legendgroup=g.key,
                uid=f"{g.key}|{g.panel}|ellipse",
                showlegend=False, hoverinfo="skip",
                line={"color": g.color, "width": 2.5 if not is_all else 1.5, "dash": "dash" if is_all else "solid"}),
                row=1, col=col)
    sigma = next((g.ellipse.sigma for g in space.groups if g.ellipse is not None), space.request.sigma)
    title = (f"{_esc(space.encoder)}<br><span style='font-size:12px'>PCA fitted on {space.fit_count} images of "
             f"{_esc(space.source_name)} · explained variance PC1 {ev[0]:.1%}, PC2 {ev[1]:.1%} · ellipses "
             f"{sigma:g}σ</span>")
    fig.update_layout(
        title={"text": title, "font": {"size": 14}}, height=height, template="plotly_white",
        hovermode="closest", legend={"orientation": "h", "y": -0.14, "x": 0.0, "itemclick": "toggle",
                                     "itemdoubleclick": "toggleothers"},
        margin={"l": 60, "r": 20, "t": 80, "b": 40}, meta={"pairlab": {"sprites": sprites}},
        uirevision=f"{space.source_fingerprint}-{space.encoder_key}")
    fig.update_xaxes(title_text=f"PC1 ({ev[0]:.1%} of variance)", matches="x", zeroline=False)
    fig.update_yaxes(title_text=f"PC2 ({ev[1]:.1%} of variance)", row=1, col=1, zeroline=False)
    return fig


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_html(fig, path: Path) -> Path:
    """A standalone HTML file (plotly.js inlined, works offline) with the hover thumbnails."""
    path = Path(path)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, post_script=STANDALONE_HOVER_JS,
                   config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}})
    return path


# ================================================================================ the PNG (PIL, same data)
def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick positions covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _hex(color: str, alpha: int = 255) -> tuple:
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha)


def render_png(space: FeatureSpace, path: Path, width: int = 1500, height: int = 720, scale: int = 2) -> Path:
    """Both panels with points, ellipses, axes, legend and title, drawn with PIL (supersampled)."""
    W, H, s = width * scale, height * scale, scale
    img = Image.new("RGBA", (W, H), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    f_title, f_axis, f_tick = load_font(15 * s), load_font(13 * s), load_font(11 * s)
    # one range for both panels (they share axes), covering points and ellipses
    xs = [g.xy[g.shown if g.shown is not None else slice(None)] for g in space.groups if g.n]
    xs += [g.ellipse.points() for g in space.groups if g.ellipse is not None]
    allp = np.concatenate(xs) if xs else np.zeros((1, 2))
    lo, hi = np.percentile(allp, 0.2, axis=0), np.percentile(allp, 99.8, axis=0)
    pad = (hi - lo) * 0.06 + 1e-9
    lo, hi = lo - pad, hi + pad
    top, bottom, left, gap, right = 76 * s, 118 * s, 80 * s, 50 * s, 20 * s
    pw = (W - left - right - gap) // 2
    ph = H - top - bottom
    boxes = {p: (left + i * (pw + gap), top, left + i * (pw + gap) + pw, top + ph) for i, p in enumerate(PANELS)}
    ev = space.explained
    sigma = next((g.ellipse.sigma for g in space.groups if g.ellipse is not None), space.request.sigma)
    sub = (f"PCA fitted on {space.fit_count} images of {space.source_name} · explained variance PC1 {ev[0]:.1%}, "
           f"PC2 {ev[1]:.1%} · ellipses {sigma:g}σ")
    for k, (text, font, color) in enumerate(((space.encoder, f_title, (20, 20, 20)), (sub, f_tick, (70, 70, 70)))):
        while draw.textlength(text, font=font) > W - left - right and len(text) > 10:
            text = text[:-2].rstrip() + "…"  # never run off the image
        draw.text((left, (10 + 20 * k) * s), text, fill=color, font=font)

    def to_px(box, pts):
        x0, y0, x1, y1 = box
        px = x0 + (pts[:, 0] - lo[0]) / (hi[0] - lo[0]) * (x1 - x0)
        py = y1 - (pts[:, 1] - lo[1]) / (hi[1] - lo[1]) * (y1 - y0)
        return px, py

    for p, box in boxes.items():
        x0, y0, x1, y1 = box
        draw.rectangle(box, outline=(150, 150, 150), width=s)
        for t in nice_ticks(lo[0], hi[0]):
            px = x0 + (t - lo[0]) / (hi[0] - lo[0]) * (x1 - x0)
            draw.line([(px, y0), (px, y1)], fill=(236, 236, 236), width=s)
            draw.text((px, y1 + 6 * s), f"{t:g}", fill=(80, 80, 80), font=f_tick, anchor="ma")
        for t in nice_ticks(lo[1], hi[1]):
            py = y1 - (t - lo[1]) / (hi[1] - lo[1]) * (y1 - y0)
            draw.line([(x0, py), (x1, py)], fill=(236, 236, 236), width=s)
            draw.text((x0 - 6 * s, py), f"{t:g}", fill=(80, 80, 80), font=f_tick, anchor="rm")
        draw.text(((x0 + x1) / 2, y0 - 8 * s), PANEL_TITLES[p], fill=(20, 20, 20), font=f_axis, anchor="md")
        draw.text(((x0 + x1) / 2, y1 + 24 * s), f"PC1 ({ev[0]:.1%} of variance)", fill=(40, 40, 40), font=f_axis,
                  anchor="ma")
    draw.text((18 * s, top + ph / 2), "PC2", fill=(40, 40, 40), font=f_axis, anchor="lm")
    order = {"all": 0, "real_on": 1, "real_off": 2, "pseudo": 3}
    for g in sorted(space.groups, key=lambda g: order.get(g.key, 4)):
        box = boxes[g.panel]
        layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        ld = ImageDraw.Draw(layer)
        shown = g.shown if g.shown is not None else np.arange(g.n)
        px, py = to_px(box, g.xy[shown])
        r = (2.0 if g.key == "all" else 3.2) * s
        fill = _hex(g.color, 110 if g.key == "all" else 200)
        inside = (px >= box[0]) & (px <= box[2]) & (py >= box[1]) & (py <= box[3])
        for x, y in zip(px[inside], py[inside]):
            ld.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        if g.ellipse is not None:
            ex, ey = to_px(box, g.ellipse.points(181))
            ld.line(list(zip(ex, ey)), fill=_hex(g.color, 255), width=(2 if g.key == "all" else 3) * s, joint="curve")
        img.alpha_composite(layer)
    # legend: one entry per group key
    x, y = left, top + ph + 58 * s
    seen = []
    for g in sorted(space.groups, key=lambda g: order.get(g.key, 4)):
        if g.key in seen:
            continue
        seen.append(g.key)
        label = "all data" if g.key == "all" else g.label
        wtxt = draw.textlength(label, font=f_axis)
        if x + 30 * s + wtxt > W - right:
            x, y = left, y + 24 * s
        draw.ellipse([x, y - 6 * s, x + 12 * s, y + 6 * s], fill=_hex(g.color))
        draw.text((x + 18 * s, y), label, fill=(30, 30, 30), font=f_axis, anchor="lm")
        x += 40 * s + wtxt
    out = img.convert("RGB").resize((width, height), Image.LANCZOS)
    path = Path(path)
    out.save(path)
    return path


# ================================================================================ exports
def plotly_png(fig, path: Path, width: int = 1500, height: int = 720) -> Path | None:
    """The plotly figure itself as PNG through kaleido (which drives the system Chromium); None when kaleido or a
    browser is not available, so the caller falls back to the PIL drawing."""
    import os

    try:
        import kaleido  # noqa: F401
    except ImportError:
        return None
    if not os.environ.get("BROWSER_PATH") and Path("/usr/bin/chromium").exists():
        os.environ["BROWSER_PATH"] = "/usr/bin/chromium"
    try:
        fig.write_image(str(path), format="png", width=width, height=height, scale=1)
    except Exception:  # no browser, a kaleido/plotly mismatch: the PIL drawing instead
        return None
    return path if Path(path).exists() and Path(path).stat().st_size > 0 else None


def export(space: FeatureSpace, folder: Path, fig=None) -> dict[str, Path]:
    """figure.png, figure.html (standalone), groups.csv (group means and distances), request.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig = fig if fig is not None else make_figure(space)
    paths = {"png": plotly_png(fig, folder / "feature-space.png") or render_png(space, folder / "feature-space.png"),
             "html": write_html(fig, folder / "feature-space.html")}
    rows = group_stats(space)
    cols = ["panel", "group", "key", "n", "pc1", "pc2", "axis_major", "axis_minor", "d_real_on", "d_real_off",
            "d_pseudo", "dfeat_real_on", "dfeat_real_off", "dfeat_pseudo"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()})
    (folder / "groups.csv").write_text(buf.getvalue())
    paths["csv"] = folder / "groups.csv"
    meta = {"request": space.request.to_dict(), "encoder": space.encoder, "encoder_key": space.encoder_key,
            "source": space.source_name, "source_fingerprint": space.source_fingerprint,
            "image_size": space.image_size, "fit_count": space.fit_count,
            "explained_variance_ratio": [float(v) for v in space.explained], "problems": space.problems,
            "timings": space.timings}
    (folder / "feature-space.json").write_text(json.dumps(meta, indent=1))
    paths["json"] = folder / "feature-space.json"
    return paths


def export_dir() -> Path:
    out = workspace.sub("cache") / "feature-exports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    return out
