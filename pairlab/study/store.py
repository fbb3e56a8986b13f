"""The vote store: one SQLite file, ``<studies>/votes.sqlite`` (WAL, synchronous=FULL, foreign keys on).

Tables
    studies(study_id, plan_sha256, created, state open|closed, platform none|prolific|mturk, completion_code)
    participants(participant_id, study_id, ordinal, code, seed, created, finished, completion_code, user_agent,
                 platform, platform_participant, platform_study, platform_session, platform_submit)
    trials(participant_id, position, trial_id, kind, sample, source_media, left_media, right_media, left_cand,
           right_cand, correct_side, repeat_of, served)   -- the trials given to each participant, in order
    votes(vote_id, study_id, participant_id, position, trial_id, left_cand, right_cand, left_media, right_media,
          choice, client_ms, server_ms, created)  UNIQUE(participant_id, position)

One vote per participant and trial: a repeated trial is its own position (``repeat_of`` points at the first
showing), so the UNIQUE(participant_id, position) constraint is "one vote per trial given". Submitting twice is
harmless: the same answer again returns the stored vote (``duplicate=True``); a different answer for an answered
trial is refused (``VoteRefused``, HTTP 409) and the first answer stays. Every write is one ``BEGIN IMMEDIATE``
transaction committed (and, with synchronous=FULL, fsynced to the WAL) before the call returns, so a vote the
server acknowledged survives a crash or restart of the app. One connection per process, guarded by a lock;
other processes (the CLI's export) wait on SQLite's busy timeout.

Group commit: concurrent writers do not each pay an fsync. ``write(fn)`` queues ``fn``; whichever thread holds
the write lock next runs every queued ``fn`` in one transaction (each in its own SAVEPOINT, so a refused vote
rolls back only itself), commits once, and only then hands each caller its result. A vote is still acknowledged
only after the commit that contains it. Reads use one connection per thread (WAL readers never wait for writers).
"""
from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from ..errors import UserError
from .access import studies_root

DB_NAME = "votes.sqlite"
CHOICES = ("left", "right", "both", "neither")

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies(
    study_id TEXT PRIMARY KEY,
    plan_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed'))
);
CREATE TABLE IF NOT EXISTS participants(
    participant_id TEXT PRIMARY KEY,
    study_id TEXT NOT NULL REFERENCES studies(study_id),
    ordinal INTEGER NOT NULL,
    code TEXT,
    seed INTEGER NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    completion_code TEXT,
    user_agent TEXT,
    UNIQUE (study_id, ordinal),
    UNIQUE (study_id, code)
);
CREATE TABLE IF NOT EXISTS trials(
    participant_id TEXT NOT NULL REFERENCES participants(participant_id),
    position INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pair', 'vs_source', 'catch')),
    sample TEXT NOT NULL,
    source_media TEXT NOT NULL,
    left_media TEXT NOT NULL,
    right_media TEXT NOT NULL,
    left_cand TEXT NOT NULL,
    right_cand TEXT NOT NULL,
    correct_side TEXT,
    repeat_of INTEGER,
    served REAL,
    PRIMARY KEY (participant_id, position)
);
CREATE TABLE IF NOT EXISTS votes(
    vote_id INTEGER PRIMARY KEY,
    study_id TEXT NOT NULL REFERENCES studies(study_id),
    participant_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    left_cand TEXT NOT NULL,
    right_cand TEXT NOT NULL,
    left_media TEXT NOT NULL,
    right_media TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'both', 'neither')),
    client_ms REAL,
    server_ms REAL,
    created REAL NOT NULL,
    UNIQUE (participant_id, position),
    FOREIGN KEY (participant_id, position) REFERENCES trials(participant_id, position)
);
CREATE INDEX IF NOT EXISTS votes_by_study ON votes(study_id);
CREATE INDEX IF NOT EXISTS participants_by_study ON participants(study_id);
"""

# Columns added after the first release: (table, column, declaration); a store made earlier gets them on opening.
ADDED_COLUMNS = (
    ("studies", "platform", "TEXT NOT NULL DEFAULT 'none'"),
    ("studies", "completion_code", "TEXT"),
    ("participants", "platform", "TEXT"),
    ("participants", "platform_participant", "TEXT"),
    ("participants", "platform_study", "TEXT"),
    ("participants", "platform_session", "TEXT"),
    ("participants", "platform_submit", "TEXT"),
)
PLATFORM_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS participants_by_platform "
                  "ON participants(study_id, platform, platform_participant)")


class VoteRefused(UserError):
    """A submission the store will not take; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class VoteStore:
    """The SQLite vote store of one studies folder; ``VoteStore.open(root)`` shares one instance per file."""

    _instances: dict[str, "VoteStore"] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = Path(path)
        self.closed = False
        self.lock = threading.RLock()          # held while a batch of writes runs and commits
        self._queue_lock = threading.Lock()
        self._pending: list[tuple] = []
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self.conn = self._connect()
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise UserError(f"The vote store {self.path} cannot use write-ahead logging (journal mode {mode}).")
        with self.lock:
            self.conn.executescript(SCHEMA)  # idempotent (IF NOT EXISTS)
            for table, column, decl in ADDED_COLUMNS:
                have = {r["name"] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    try:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                    except sqlite3.OperationalError as exc:   # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
            self.conn.execute(PLATFORM_INDEX)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @classmethod
    def open(cls, root=None) -> "VoteStore":
        path = (studies_root(root) / DB_NAME).resolve()
        with cls._instances_lock:
            store = cls._instances.get(str(path))
            if store is None or store.closed or not path.exists():
                if store is not None:
                    store.close()
                store = cls(path)
                cls._instances[str(path)] = store
            return store

    @classmethod
    def forget(cls, root=None) -> None:
        """Close and drop the shared instance (tests simulate a process restart with it)."""
        path = str((studies_root(root) / DB_NAME).resolve())
        with cls._instances_lock:
            store = cls._instances.pop(path, None)
        if store is not None:
            store.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for conn in [self.conn, *self._readers]:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass

    # ---------------------------------------------------------------------------------- reading and writing
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._queue_lock:
                self._readers.append(conn)
        return conn

    def query(self, sql: str, args=()) -> list[sqlite3.Row]:
        if self.closed:
            raise UserError("The vote store is closed.")
        return self._reader().execute(sql, args).fetchall()

    def write(self, fn):
        """Run ``fn(conn)`` in a write transaction (group-committed with concurrent writes); return its result."""
        fut: Future = Future()
        with self._queue_lock:
            self._pending.append((fn, fut))
        with self.lock:
            if not fut.done():
                with self._queue_lock:
                    batch, self._pending = self._pending, []
                self._run(batch)
        return fut.result()

    def _run(self, batch: list[tuple]) -> None:
        if self.closed:
            for _, fut in batch:
                fut.set_exception(UserError("The vote store is closed."))
            return
        c = self.conn
        results = []
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                for fn, fut in batch:
                    c.execute("SAVEPOINT one")
                    try:
                        value = fn(c)
                    except BaseException as exc:  # noqa: BLE001 - handed to its caller
                        c.execute("ROLLBACK TO one")
                        c.execute("RELEASE one")
                        results.append((fut, None, exc))
                    else:
                        c.execute("RELEASE one")
                        results.append((fut, value, None))
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
        except BaseException as exc:  # noqa: BLE001 - nothing of the batch was stored
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for fut, value, exc in results:
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)

    # ---------------------------------------------------------------------------------- studies
    def register_study(self, study_id: str, plan_sha: str) -> None:
        def fn(c):
            row = c.execute("SELECT plan_sha256 FROM studies WHERE study_id=?", (study_id,)).fetchone()
            if row is None:
                c.execute("INSERT INTO studies(study_id, plan_sha256, created) VALUES (?, ?, ?)",
                          (study_id, plan_sha, time.time()))
            elif row["plan_sha256"] != plan_sha:
                raise VoteRefused("This study's plan has changed since it was frozen, so it takes no votes.", 409)

        self.write(fn)

    def plan_sha(self, study_id: str) -> str | None:
        rows = self.query("SELECT plan_sha256 FROM studies WHERE study_id=?", (study_id,))
        return rows[0]["plan_sha256"] if rows else None

    def study_state(self, study_id: str) -> str | None:
        rows = self.query("SELECT state FROM studies WHERE study_id=?", (study_id,))
        return rows[0]["state"] if rows else None

    def set_state(self, study_id: str, state: str) -> None:
        if state not in ("open", "closed"):
            raise ValueError(state)

        def fn(c):
            if c.execute("UPDATE studies SET state=? WHERE study_id=?", (state, study_id)).rowcount != 1:
                raise UserError("There is no study with this id in the vote store.")

        self.write(fn)

    def settings(self, study_id: str) -> dict:
        """{platform, completion_code}: how the study hands participants back (see ``platforms``)."""
        rows = self.query("SELECT platform, completion_code FROM studies WHERE study_id=?", (study_id,))
        if not rows:
            return {"platform": "none", "completion_code": None}
        return {"platform": rows[0]["platform"] or "none", "completion_code": rows[0]["completion_code"]}

    def set_settings(self, study_id: str, platform: str, completion_code: str | None) -> None:
        def fn(c):
            if c.execute("UPDATE studies SET platform=?, completion_code=? WHERE study_id=?",
                         (platform, completion_code, study_id)).rowcount != 1:
                raise UserError("There is no study with this id in the vote store.")

        self.write(fn)

    def counts(self, study_id: str) -> dict:
        st = self.query("SELECT state FROM studies WHERE study_id=?", (study_id,))
        p = self.query("SELECT COUNT(*), COUNT(finished) FROM participants WHERE study_id=?", (study_id,))[0]
        v = self.query("SELECT COUNT(*) FROM votes WHERE study_id=?", (study_id,))[0]
        return {"state": st[0]["state"] if st else "unregistered", "participants": p[0], "finished": p[1], "votes": v[0]}

    # ---------------------------------------------------------------------------------- participants
    def add_participant(self, study_id: str, make, code: str | None, user_agent: str = "",
                        platform: dict | None = None) -> tuple[str, bool]:
        """Create a participant (or find the one with this ``code``, or with this platform participant id);
        returns (participant_id, created). ``platform`` is ``platforms.parse_link``'s dict, stored with them.

        ``make(ordinal) -> (participant_id, seed, trial_rows)`` builds the assignment inside the transaction, so the
        ordinal (which slice of the pool this participant gets) is unique and gap-free.
        """
        def fn(c):
            st = c.execute("SELECT state FROM studies WHERE study_id=?", (study_id,)).fetchone()
            if st is None or st["state"] != "open":
                raise VoteRefused("This study is closed and takes no more answers.", 410)
            if platform and platform.get("participant"):
                row = c.execute("SELECT participant_id FROM participants WHERE study_id=? AND platform=? AND "
                                "platform_participant=?", (study_id, platform["platform"], platform["participant"])).fetchone()
                if row is not None:
                    return row["participant_id"], False
            if code:
                row = c.execute("SELECT participant_id FROM participants WHERE study_id=? AND code=?",
                                (study_id, code)).fetchone()
                if row is not None:
                    return row["participant_id"], False
            ordinal = c.execute("SELECT COUNT(*) FROM participants WHERE study_id=?", (study_id,)).fetchone()[0]
            pid, seed, rows = make(ordinal)
            plat = platform or {}
            c.execute("INSERT INTO participants(participant_id, study_id, ordinal, code, seed, created, user_agent, "
                      "platform, platform_participant, platform_study, platform_session, platform_submit) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (pid, study_id, ordinal, code or None, seed, time.time(), (user_agent or "")[:200],
                       plat.get("platform"), plat.get("participant"), plat.get("study"), plat.get("session"),
                       plat.get("submit_to")))
            c.executemany(
                "INSERT INTO trials(participant_id, position, trial_id, kind, sample, source_media, left_media, right_media,"
                " left_cand, right_cand, correct_side, repeat_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(pid, r["position"], r["trial_id"], r["kind"], r["sample"], r["source_media"], r["left_media"],
                  r["right_media"], r["left_cand"], r["right_cand"], r["correct_side"], r["repeat_of"]) for r in rows])
            return pid, True

        return self.write(fn)

    def participant(self, study_id: str, participant_id: str):
        rows = self.query("SELECT * FROM participants WHERE study_id=? AND participant_id=?", (study_id, participant_id))
        return rows[0] if rows else None

    @staticmethod
    def _next(c, participant_id: str, mark_served: bool):
        row = c.execute("SELECT t.* FROM trials t LEFT JOIN votes v ON v.participant_id=t.participant_id AND "
                        "v.position=t.position WHERE t.participant_id=? AND v.vote_id IS NULL ORDER BY t.position LIMIT 1",
                        (participant_id,)).fetchone()
        if row is not None and mark_served:
            c.execute("UPDATE trials SET served=? WHERE participant_id=? AND position=?",
                      (time.time(), participant_id, row["position"]))
        return row

    @staticmethod
    def _where(c, participant_id: str, nxt, p) -> dict:
        done = c.execute("SELECT COUNT(*) FROM votes WHERE participant_id=?", (participant_id,)).fetchone()[0]
        total = c.execute("SELECT COUNT(*) FROM trials WHERE participant_id=?", (participant_id,)).fetchone()[0]
        return {"next": dict(nxt) if nxt is not None else None, "done": done, "total": total,
                "finished": nxt is None, "completion_code": p["completion_code"] if p is not None else None}

    def where(self, study_id: str, participant_id: str) -> dict:
        """The participant's next unanswered trial (marked as served now) and progress: {next, done, total, ...}."""
        def fn(c):
            p = c.execute("SELECT * FROM participants WHERE participant_id=? AND study_id=?",
                          (participant_id, study_id)).fetchone()
            if p is None:
                raise VoteRefused("This participant link is not valid for this study.", 403)
            if p["finished"] is None:
                st = c.execute("SELECT state FROM studies WHERE study_id=?", (study_id,)).fetchone()
                if st is None or st["state"] != "open":
                    raise VoteRefused("This study is closed and takes no more answers.", 410)
            return self._where(c, participant_id, self._next(c, participant_id, True), p)

        return self.write(fn)

    # ---------------------------------------------------------------------------------- votes
    def record_vote(self, study_id: str, participant_id: str, position: int, choice: str,
                    client_ms: float | None, finish=None) -> dict:
        """Store one vote (committed before returning): {duplicate, next, done, total, finished, completion_code}.

        ``next`` is the participant's next unanswered trial (marked as served) or None; ``finish(ordinal)`` gives
        the completion code stored when the last trial is answered.
        """
        if choice not in CHOICES:
            raise VoteRefused(f"The answer must be one of {', '.join(CHOICES)}.", 422)
        if client_ms is not None and not (0 <= client_ms < 86_400_000):
            client_ms = None

        def fn(c):
            now = time.time()
            st = c.execute("SELECT state FROM studies WHERE study_id=?", (study_id,)).fetchone()
            if st is None:
                raise VoteRefused("This study link is not valid.", 404)
            if st["state"] != "open":
                raise VoteRefused("This study is closed and takes no more answers.", 410)
            p = c.execute("SELECT * FROM participants WHERE participant_id=? AND study_id=?",
                          (participant_id, study_id)).fetchone()
            if p is None:
                raise VoteRefused("This participant link is not valid for this study.", 403)
            t = c.execute("SELECT * FROM trials WHERE participant_id=? AND position=?", (participant_id, position)).fetchone()
            if t is None:
                raise VoteRefused("This trial was not given to you.", 403)
            old = c.execute("SELECT choice FROM votes WHERE participant_id=? AND position=?",
                            (participant_id, position)).fetchone()
            if old is not None:
                if old["choice"] != choice:
                    raise VoteRefused("This trial already has your answer; answers cannot be changed.", 409)
                return dict(self._where(c, participant_id, self._next(c, participant_id, False), p), duplicate=True)
            first_open = self._next(c, participant_id, False)
            if first_open is None or first_open["position"] != position:
                raise VoteRefused("Please answer the trials in the order they are shown.", 409)
            server_ms = (now - t["served"]) * 1000.0 if t["served"] else None
            c.execute("INSERT INTO votes(study_id, participant_id, position, trial_id, left_cand, right_cand, left_media,"
                      " right_media, choice, client_ms, server_ms, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (study_id, participant_id, position, t["trial_id"], t["left_cand"], t["right_cand"],
                       t["left_media"], t["right_media"], choice, client_ms, server_ms, now))
            nxt = self._next(c, participant_id, True)
            if nxt is None:
                code = finish(p["ordinal"]) if finish else None
                c.execute("UPDATE participants SET finished=?, completion_code=? WHERE participant_id=?",
                          (now, code, participant_id))
                p = dict(p, completion_code=code)
            return dict(self._where(c, participant_id, nxt, p), duplicate=False)

        return self.write(fn)

    def votes(self, study_id: str) -> list[dict]:
        """Every vote of a study joined with its trial (kind, sample, repeat_of, correct side) and participant."""
        rows = self.query(
            "SELECT v.*, t.kind, t.sample, t.repeat_of, t.correct_side, p.code AS participant_code, p.ordinal, "
            "p.platform, p.platform_participant, p.platform_study, p.platform_session "
            "FROM votes v JOIN trials t ON t.participant_id=v.participant_id AND t.position=v.position "
            "JOIN participants p ON p.participant_id=v.participant_id WHERE v.study_id=? "
            "ORDER BY p.ordinal, v.position", (study_id,))
        return [dict(r) for r in rows]

    def participants(self, study_id: str) -> list[dict]:
        rows = self.query("SELECT p.*, (SELECT COUNT(*) FROM trials t WHERE t.participant_id=p.participant_id) AS n_trials, "
                          "(SELECT COUNT(*) FROM votes v WHERE v.participant_id=p.participant_id) AS n_votes "
                          "FROM participants p WHERE study_id=? ORDER BY ordinal", (study_id,))
        return [dict(r) for r in rows]
