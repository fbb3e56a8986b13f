"""Crowdsourcing hand-off: Prolific and Amazon Mechanical Turk.

The participant link may carry the platform's ids, which are stored with the participant and exported:

    Prolific   ?PROLIFIC_PID=...&STUDY_ID=...&SESSION_ID=...           (Prolific appends them to the study URL)
    MTurk      ?workerId=...&assignmentId=...&hitId=...&turkSubmitTo=...  (an ExternalQuestion HIT)

Each id must be short (1 to 64 characters) and made of letters, digits, '_' and '-' only; anything else is refused
with one sentence (the participant server is public facing). ``turkSubmitTo`` must be MTurk's own address (live
or sandbox). A participant who comes back with the same platform participant id resumes their session.

A study's settings (kept in the vote store, editable after freezing, since a platform gives its completion code
after the study link is known): ``platform`` none | prolific | mturk and a ``completion_code``. At the end:
prolific -> the page sends the participant to ``https://app.prolific.com/submissions/complete?cc=CODE``;
mturk -> the page shows the code and, when the link named ``turkSubmitTo``, posts the assignment to
``<turkSubmitTo>/mturk/externalSubmit``; none -> the page shows the code (the study's, or else the participant's
own signed code from ``access.completion_code``).
"""
from __future__ import annotations

import re
from urllib.parse import quote

from ..errors import UserError

PLATFORMS = ("none", "prolific", "mturk")
PROLIFIC_KEYS = {"PROLIFIC_PID": "participant", "STUDY_ID": "study", "SESSION_ID": "session"}
MTURK_KEYS = {"workerId": "participant", "hitId": "study", "assignmentId": "session"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete?cc="


class PlatformRefused(UserError):
    """A link whose platform ids cannot be taken; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def parse_link(params) -> dict | None:
    """The platform ids of a participant link (a mapping of query parameters), checked; None when there are none.

    Returns {platform, participant, study, session, submit_to, preview}: ``preview`` is True for an MTurk worker
    who has not accepted the HIT yet (assignmentId ASSIGNMENT_ID_NOT_AVAILABLE).
    """
    params = params or {}
    if not hasattr(params, "get"):
        raise PlatformRefused("The platform ids must be given as named values.")
    found = {}
    for platform, keys in (("prolific", PROLIFIC_KEYS), ("mturk", MTURK_KEYS)):
        given = {k: params.get(k) for k in keys if params.get(k) not in (None, "")}
        if given:
            found[platform] = given
    submit = params.get("turkSubmitTo")
    if submit not in (None, "") and "mturk" not in found:
        raise PlatformRefused("This link has turkSubmitTo without the MTurk worker and assignment ids.")
    if not found:
        return None
    if len(found) > 1:
        raise PlatformRefused("This link carries both Prolific and MTurk ids; it must come from one platform.")
    platform, given = next(iter(found.items()))
    keys = PROLIFIC_KEYS if platform == "prolific" else MTURK_KEYS
    for name, value in given.items():
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise PlatformRefused(f"The link's {name} must be 1 to 64 letters, digits, '_' or '-'.")
    need = "PROLIFIC_PID" if platform == "prolific" else "workerId"
    preview = platform == "mturk" and given.get("assignmentId") == MTURK_PREVIEW
    if need not in given and not preview:
        raise PlatformRefused(f"This link has {platform} ids but no {need}.")
    if platform == "mturk" and "assignmentId" not in given:
        raise PlatformRefused("This MTurk link has no assignmentId.")
    out = {"platform": platform, "preview": preview, "submit_to": None}
    for key, field in keys.items():
        out[field] = given.get(key)
    if submit not in (None, ""):
        if not isinstance(submit, str) or submit.rstrip("/") not in MTURK_HOSTS:
            raise PlatformRefused("The link's turkSubmitTo must be MTurk's own address (www.mturk.com or "
                                  "workersandbox.mturk.com).")
        out["submit_to"] = submit.rstrip("/")
    return out


def public_ids(ids: dict | None) -> dict:
    """What the participant page sends back on joining: the original query names and values."""
    if not ids:
        return {}
    keys = PROLIFIC_KEYS if ids["platform"] == "prolific" else MTURK_KEYS
    out = {k: ids[f] for k, f in keys.items() if ids.get(f)}
    if ids.get("submit_to"):
        out["turkSubmitTo"] = ids["submit_to"]
    return out


def check_settings(platform: str, completion_code: str | None) -> tuple[str, str | None]:
    """Validated (platform, completion code); one sentence for anything else."""
    platform = (platform or "none").strip().lower()
    if platform not in PLATFORMS:
        raise UserError(f"The platform must be one of {', '.join(PLATFORMS)}.")
    code = (completion_code or "").strip() or None
    if code is not None and not CODE_PATTERN.match(code):
        raise UserError("The completion code must be 1 to 40 letters, digits, '_' or '-'.")
    if platform == "prolific" and code is None:
        raise UserError("Prolific needs the study's completion code (Prolific shows it under 'Study completion').")
    return platform, code


def completion(settings: dict, participant) -> dict:
    """The end of a participant's session: {code, redirect, submit}.

    ``redirect``: the Prolific completion URL; ``submit``: {action, assignmentId} for MTurk's externalSubmit.
    """
    p = dict(participant) if participant is not None else {}
    platform = settings.get("platform") or "none"
    code = settings.get("completion_code") or p.get("completion_code")
    out = {"code": code, "redirect": None, "submit": None}
    if platform == "prolific" and settings.get("completion_code"):
        out["redirect"] = PROLIFIC_COMPLETE + quote(settings["completion_code"], safe="")
    elif platform == "mturk" and p.get("platform") == "mturk" and p.get("platform_submit") \
            and p.get("platform_session") and p["platform_session"] != MTURK_PREVIEW:
        out["submit"] = {"action": p["platform_submit"] + "/mturk/externalSubmit", "assignmentId": p["platform_session"]}
    return out


# ------------------------------------------------------------------------------------------ the lab's calls
def study_settings(study_id: str, root=None) -> dict:
    """{platform, completion_code} of a study (platform 'none' and no code until set)."""
    from .plan import load_plan
    from .store import VoteStore

    load_plan(study_id, root)
    return VoteStore.open(root).settings(study_id)


def set_study_settings(study_id: str, platform: str, completion_code: str | None = None, root=None) -> dict:
    """Set how a study hands participants back to their platform; returns the stored settings."""
    from .plan import load_plan
    from .store import VoteStore

    load_plan(study_id, root)
    platform, code = check_settings(platform, completion_code)
    store = VoteStore.open(root)
    store.set_settings(study_id, platform, code)
    return store.settings(study_id)
