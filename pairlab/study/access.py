"""Secrets and access: the HMAC secret of the participant tokens, and the lab's login.

Participant tokens
    ``<participant_id>.<hmac>``: the HMAC-SHA256 (secret, "study_id:participant_id"), truncated to 32 hex digits.
    Trial handles are ``<position>.<hmac>`` over "study_id:participant_id:position", so a client cannot name a
    trial it was not given. The secret is 32 random bytes in ``<studies>/.secret`` (mode 0600), made on first
    use; deleting it invalidates every outstanding participant link.

The lab's login
    The lab shows every run's name and every vote, so it must not be open to participants. ``lab_auth(host)`` gives
    what ``gr.Blocks.launch(auth=...)`` takes: ``None`` on a loopback address without ``PAIRLAB_AUTH``; otherwise a
    checker for ``PAIRLAB_AUTH=user:password``. Served beyond localhost without ``PAIRLAB_AUTH``, a random password
    is made for user ``lab``, printed once on the console and kept in ``<studies>/.lab_password`` (0600).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Callable

from .. import workspace
from ..errors import UserError

SECRET_FILE = ".secret"
PASSWORD_FILE = ".lab_password"


def studies_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding every study, the vote store and the secret (default: the workspace's studies/)."""
    if root is None:
        return workspace.sub("studies")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = make()
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if another process made it first: then theirs wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def secret(root=None) -> bytes:
    data = _private_file(studies_root(root) / SECRET_FILE, lambda: secrets.token_bytes(32))
    if len(data) < 16:
        raise UserError(f"The study secret {studies_root(root) / SECRET_FILE} is damaged; delete it to make a new one.")
    return data


def sign(key: bytes, message: str, length: int = 32) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:length]


def participant_token(key: bytes, study_id: str, participant_id: str) -> str:
    return f"{participant_id}.{sign(key, f'{study_id}:{participant_id}')}"


def check_participant_token(key: bytes, study_id: str, token) -> str | None:
    """The participant id if ``token`` was signed for this study, else None."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 100:
        return None
    pid, mac = token.split(".")
    if not pid or not hmac.compare_digest(mac, sign(key, f"{study_id}:{pid}")):
        return None
    return pid


def trial_handle(key: bytes, study_id: str, participant_id: str, position: int) -> str:
    return f"{position}.{sign(key, f'{study_id}:{participant_id}:{position}', 16)}"


def check_trial_handle(key: bytes, study_id: str, participant_id: str, handle) -> int | None:
    """The trial position if ``handle`` was given to this participant, else None."""
    if not isinstance(handle, str) or handle.count(".") != 1 or len(handle) > 40:
        return None
    pos, mac = handle.split(".")
    if not pos.isdigit() or len(pos) > 6:
        return None
    position = int(pos)
    if not hmac.compare_digest(mac, sign(key, f"{study_id}:{participant_id}:{position}", 16)):
        return None
    return position


def completion_code(key: bytes, study_id: str, participant_id: str) -> str:
    """A short code the participant pastes into a crowdsourcing site; the lab can recompute it."""
    raw = sign(key, f"done:{study_id}:{participant_id}", 10).upper()
    return f"{raw[:5]}-{raw[5:]}"


# ------------------------------------------------------------------------------------------ the lab's login
def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(value: str) -> tuple[str, str]:
    user, sep, password = (value or "").partition(":")
    if not sep or not user.strip() or not password:
        raise UserError("PAIRLAB_AUTH must look like user:password (both non-empty).")
    return user.strip(), password


def lab_auth(host: str, env: dict | None = None, root=None, announce: Callable[[str], None] = print):
    """What to pass to ``launch(auth=...)`` for the lab served on ``host``.

    ``None`` (no login) only on a loopback address with ``PAIRLAB_AUTH`` unset. With ``PAIRLAB_AUTH=user:password``
    that login is always required. Beyond localhost without it, a random password for user ``lab`` is made (kept
    in ``<studies>/.lab_password``) and announced once, so the lab is never open to the participants' network.
    """
    env = os.environ if env is None else env
    value = env.get("PAIRLAB_AUTH", "").strip()
    if value:
        user, password = parse_auth(value)
    elif is_loopback(host):
        return None
    else:
        user = "lab"
        path = studies_root(root) / PASSWORD_FILE
        password = _private_file(path, lambda: secrets.token_urlsafe(12).encode()).decode().strip()
        announce(f"The lab is served on {host}: log in as '{user}' with the password in {path} "
                 f"(or set PAIRLAB_AUTH=user:password).")

    def check(username: str, given: str) -> bool:
        ok_user = hmac.compare_digest(str(username or "").encode(), user.encode())
        ok_pass = hmac.compare_digest(str(given or "").encode(), password.encode())
        return ok_user and ok_pass

    return check
