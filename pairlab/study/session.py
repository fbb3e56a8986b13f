"""A participant's session, independent of HTTP: join, where am I, vote.

Each function returns the participant-facing JSON (``public_state``): the question, the answer labels, progress,
and the current trial as three opaque media names plus a signed trial handle -- never a run id, label, sample
name, trial kind or trial id. Refusals are ``VoteRefused`` with one sentence and an HTTP status.

Assignment (``build_assignment``): participant number ``ordinal`` (0, 1, 2 ... in joining order) gets the slice
``[ordinal * n, ordinal * n + n)`` (mod the pool) of the plan's shuffled pool, so participants cover the pool
evenly; then, from the participant's own seed (SHA-256 of the study seed and participant id, stored), the order
is shuffled, left/right drawn per trial, ``repeats`` trials are shown again at least three trials later with
sides swapped, and catch trials are inserted at random positions (never first). The whole list is stored in the
``trials`` table when the participant joins, so it never depends on code that might change later.
"""
from __future__ import annotations

import hashlib
import random
import secrets

from ..errors import UserError
from . import access, platforms
from .plan import ANSWER_KEYS, CONSENT, Plan, load_plan
from .store import VoteRefused, VoteStore

SHORTCUTS = {"left": ["ArrowLeft", "1"], "right": ["ArrowRight", "2"], "both": ["ArrowUp", "3"], "neither": ["ArrowDown", "4"]}

def participant_seed(plan: Plan, participant_id: str) -> int:
    digest = hashlib.sha256(f"{plan.data['design']['seed']}:{participant_id}".encode()).hexdigest()
    return int(digest[:12], 16)


def build_assignment(plan: Plan, ordinal: int, seed: int) -> list[dict]:
    """The ordered trials of participant ``ordinal`` with ``seed``: rows for the store's ``trials`` table."""
    d = plan.data
    design = d["design"]
    pool = list(d["trials"])
    n = int(d["trials_per_participant"])
    start = (ordinal * n) % len(pool)
    chosen = [pool[(start + i) % len(pool)] for i in range(n)]
    rng = random.Random(seed)
    rng.shuffle(chosen)
    seq = [{"t": t, "swap": rng.random() < 0.5, "orig": None} for t in chosen]
    reps = int(design["repeats"])
    eligible = range(max(len(seq) - 4, reps))  # originals early enough for a gap of three trials or more
    for entry in [seq[i] for i in sorted(rng.sample(eligible, reps))]:
        at = next(i for i, e in enumerate(seq) if e is entry)
        pos = rng.randint(min(at + 4, len(seq)), len(seq))
        seq.insert(pos, {"t": entry["t"], "swap": not entry["swap"], "orig": entry})
    catch = list(d["catch"])
    for t in rng.sample(catch, min(int(design["catch_trials"]), len(catch))):
        seq.insert(rng.randint(1, len(seq)), {"t": t, "swap": rng.random() < 0.5, "orig": None})
    index = {id(e): i for i, e in enumerate(seq)}
    rows = []
    for i, e in enumerate(seq):
        t, swap = e["t"], e["swap"]
        left, right = ("b", "a") if swap else ("a", "b")
        correct = None
        if t["correct"]:
            correct = "left" if t["correct"] == left else "right"
        rows.append({"position": i, "trial_id": t["id"], "kind": t["kind"], "sample": t["sample"],
                     "source_media": t["source"], "left_media": t[f"media_{left}"], "right_media": t[f"media_{right}"],
                     "left_cand": t[left], "right_cand": t[right], "correct_side": correct,
                     "repeat_of": index[id(e["orig"])] if e["orig"] is not None else None})
    return rows


def clean_code(code) -> str | None:
    if code is None:
        return None
    if not isinstance(code, str):
        raise VoteRefused("The participant code must be text.", 422)
    code = code.strip()
    if not code:
        return None
    if len(code) > 64 or not all(c.isalnum() or c in "-_.@" for c in code):
        raise VoteRefused("The participant code may hold up to 64 letters, digits and - _ . @ only.", 422)
    return code


def public_info(plan: Plan) -> dict:
    """What the consent page shows: the question, the instructions, the answers and their shortcuts."""
    d = plan.data["design"]
    return {"question": d["question"], "instructions": d["instructions"], "consent": CONSENT,
            "answers": [{"key": k, "label": lab, "shortcuts": SHORTCUTS[k]} for k, lab in zip(ANSWER_KEYS, d["answers"])],
            "total": int(plan.data["trials_per_participant"]) + int(d["repeats"]) + min(int(d["catch_trials"]), len(plan.data["catch"]))}


class StudyService:
    """The participant side of every study in one studies folder (one per server; cheap to make)."""

    def __init__(self, root=None):
        self.root = access.studies_root(root)
        self.key = access.secret(self.root)
        self.store = VoteStore.open(self.root)
        self._plans: dict[str, Plan] = {}

    def plan(self, study_id: str) -> Plan:
        """The frozen plan, checked once against the hash recorded at freezing; 404 if there is none."""
        plan = self._plans.get(study_id)
        if plan is not None:
            return plan
        try:
            plan = load_plan(study_id, self.root)
        except UserError:
            raise VoteRefused("This study link is not valid.", 404)
        recorded = self.store.plan_sha(study_id)
        if recorded is None:
            self.store.register_study(study_id, plan.sha256)
        elif recorded != plan.sha256:
            raise VoteRefused("This study's plan has changed since it was frozen, so it takes no answers.", 409)
        self._plans[study_id] = plan
        return plan

    def participant_id(self, study_id: str, token) -> str:
        pid = access.check_participant_token(self.key, study_id, token)
        if pid is None:
            raise VoteRefused("This participant link is not valid for this study.", 403)
        return pid

    def public_state(self, study_id: str, pid: str, where: dict) -> dict:
        state = {"done": where["done"], "total": where["total"], "finished": where["finished"],
                 "completion_code": None, "completion_url": None, "submit": None, "trial": None}
        if where["finished"]:
            end = platforms.completion(self.store.settings(study_id), self.store.participant(study_id, pid))
            state.update(completion_code=end["code"], completion_url=end["redirect"], submit=end["submit"])
        row = where["next"]
        if row is not None:
            state["trial"] = {"handle": access.trial_handle(self.key, study_id, pid, row["position"]),
                              "source": row["source_media"], "left": row["left_media"], "right": row["right_media"]}
        return state

    def join(self, study_id: str, code=None, user_agent: str = "", platform=None) -> tuple[str, dict]:
        """Start (or, with a known participant code or platform participant id, resume) a session; (token, state).

        ``platform``: the link's query parameters naming the participant on Prolific or MTurk (``platforms``).
        """
        plan = self.plan(study_id)
        code = clean_code(code)
        try:
            ids = platforms.parse_link(platform)
        except platforms.PlatformRefused as exc:
            raise VoteRefused(str(exc), exc.status)
        if ids and ids["preview"]:
            raise VoteRefused("Please accept the HIT on MTurk first, then start.", 409)

        def make(ordinal: int):
            pid = secrets.token_hex(8)
            seed = participant_seed(plan, pid)
            return pid, seed, build_assignment(plan, ordinal, seed)

        pid, _created = self.store.add_participant(study_id, make, code, user_agent or "", ids)
        token = access.participant_token(self.key, study_id, pid)
        return token, self.public_state(study_id, pid, self.store.where(study_id, pid))

    def state(self, study_id: str, token) -> dict:
        """Where the participant is: the first unanswered trial (marked as served now), or the completion code."""
        self.plan(study_id)
        pid = self.participant_id(study_id, token)
        return self.public_state(study_id, pid, self.store.where(study_id, pid))

    def vote(self, study_id: str, token, handle, choice, client_ms=None) -> dict:
        """Record one answer (committed before returning); the new state, with ``duplicate`` when it was a replay."""
        self.plan(study_id)
        pid = self.participant_id(study_id, token)
        position = access.check_trial_handle(self.key, study_id, pid, handle)
        if position is None:
            raise VoteRefused("This trial was not given to you.", 403)
        if choice not in ANSWER_KEYS:
            raise VoteRefused(f"The answer must be one of {', '.join(ANSWER_KEYS)}.", 422)
        if client_ms is not None:
            if isinstance(client_ms, bool) or not isinstance(client_ms, (int, float)):
                raise VoteRefused("The response time must be a number of milliseconds.", 422)
            client_ms = float(client_ms)
            if not (0.0 <= client_ms <= 86_400_000.0):  # also NaN (json reads it) and infinities
                raise VoteRefused("The response time must be between 0 and 86,400,000 milliseconds (one day).", 422)
        key = self.key
        where = self.store.record_vote(study_id, pid, position, choice, client_ms,
                                       finish=lambda ordinal: access.completion_code(key, study_id, pid))
        out = self.public_state(study_id, pid, where)
        out["duplicate"] = where["duplicate"]
        return out


_SERVICES: dict[str, StudyService] = {}


def service(root=None) -> StudyService:
    """The shared service of a studies folder (made again if its store was closed)."""
    key = str(access.studies_root(root))
    svc = _SERVICES.get(key)
    if svc is None or svc.store.closed:
        svc = _SERVICES[key] = StudyService(root)
    return svc


def join(study_id: str, code=None, user_agent: str = "", root=None, platform=None) -> tuple[str, dict]:
    return service(root).join(study_id, code, user_agent, platform)


def state(study_id: str, token, root=None) -> dict:
    return service(root).state(study_id, token)


def vote(study_id: str, token, handle, choice, client_ms=None, root=None) -> dict:
    return service(root).vote(study_id, token, handle, choice, client_ms)
