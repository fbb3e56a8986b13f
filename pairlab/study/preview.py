"""What a participant sees for one trial of a frozen study, for the lab (the designer checks the study before
handing out its link).

``trial_preview(study_id, index)`` takes trial ``index`` of the plan's pool (then the catch trials after the pool)
and returns the question, the four answer labels, the three images a participant sees (the source panel on top,
left and right below) and, for the lab only, which run is on which side. Participants get left and right drawn
from their own seed; the preview shows the plan's order (a left, b right).
"""
from __future__ import annotations

import base64
import html

from ..errors import UserError
from .plan import SOURCE_ID, load_plan


def trial_count(study_id: str, root=None) -> int:
    plan = load_plan(study_id, root)
    return len(plan.data["trials"]) + len(plan.data["catch"])


def trial_preview(study_id: str, index: int = 0, root=None) -> dict:
    """{index, count, kind, sample, question, answers, source, left, right (image paths), left_label, right_label}."""
    plan = load_plan(study_id, root)
    trials = list(plan.data["trials"]) + list(plan.data["catch"])
    if not trials:
        raise UserError("This study has no trials to preview.")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(trials):
        raise UserError(f"Choose a trial from 1 to {len(trials)} to preview.")
    t = trials[index]
    labels = dict(plan.labels)
    labels.update({"catch-good": "catch: the obvious answer", "catch-bad": "catch: the wrong answer"})
    if SOURCE_ID in labels:
        labels[SOURCE_ID] = "the source image"
    design = plan.data["design"]
    return {"index": index, "count": len(trials), "kind": t["kind"], "sample": t["sample"],
            "question": design["question"], "answers": list(design["answers"]),
            "source": str(plan.media_path(t["source"])), "left": str(plan.media_path(t["media_a"])),
            "right": str(plan.media_path(t["media_b"])),
            "left_label": labels.get(t["a"], t["a"]), "right_label": labels.get(t["b"], t["b"])}


def _data_uri(path: str) -> str:
    with open(path, "rb") as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode()


def preview_html(p: dict) -> str:
    """The trial laid out as on the participant page (question, original on top, left and right, the answers)."""
    e = html.escape
    fig = ("<figure style='margin:0;text-align:center'><img src='{src}' alt='{alt}' style='width:100%;max-width:{w}px;"
           "aspect-ratio:1/1;object-fit:contain;background:#eceff4;border-radius:8px'>"
           "<figcaption style='color:#5b6474;font-size:.9em'>{cap}</figcaption></figure>")
    buttons = "".join(f"<span style='flex:1;text-align:center;border:1px solid #d9dde5;border-radius:7px;padding:8px'>"
                      f"{e(a)}</span>" for a in p["answers"])
    return (f"<div id='st-preview-card' style='border:1px solid #d9dde5;border-radius:10px;padding:14px;background:#fff;"
            f"color:#1d2330;max-width:720px'>"
            f"<div style='font-size:1.15em;font-weight:600;text-align:center;margin-bottom:8px'>{e(p['question'])}</div>"
            f"<div style='max-width:220px;margin:0 auto'>{fig.format(src=_data_uri(p['source']), alt='original photo', w=220, cap='Original')}</div>"
            f"<div style='display:grid;grid-template-columns:1fr 1fr;gap:14px;margin-top:8px'>"
            f"{fig.format(src=_data_uri(p['left']), alt='left option', w=300, cap='Left')}"
            f"{fig.format(src=_data_uri(p['right']), alt='right option', w=300, cap='Right')}</div>"
            f"<div style='display:flex;gap:8px;margin-top:10px'>{buttons}</div>"
            f"<p style='color:#5b6474;font-size:.85em;margin:8px 0 0'>Lab only (participants never see this): trial "
            f"{p['index'] + 1} of {p['count']}, {e(p['kind'])}, sample {e(p['sample'])}; left = <b>{e(p['left_label'])}</b>, "
            f"right = <b>{e(p['right_label'])}</b>. Participants get left and right drawn at random.</p></div>")
