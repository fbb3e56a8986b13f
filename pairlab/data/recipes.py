"""Recipes: what to build from a source. A frozen config, serialised into every composition's manifest.

Kinds (paper 000 Sec. 3 and 5, paper 002 Sec. 3.2):
- ``alpha-paired``: |A| = |B| = n; exactly round(alpha * n) A images have their true counterpart in B;
  the other B images are counterparts of pairs not used in A (so B's distribution does not depend on alpha).
- ``pseudo``: n real A + n real B, augmented by ``augmentation``:
    none            nothing added                                   (|A| = n)
    natural         n more real A images                            (|A| = 2n)
    pseudo-unpaired n pseudo-samples M(b') whose b' are not in B     (|A| = 2n)
    pseudo-paired   pseudo-samples M(b) with their b in B; ``pseudo_alpha`` sets the share of paired A
                    images (Table 5): P = round(pseudo_alpha * 2n) pseudo-pairs; at or below 0.5 the rest of the
                    n augmentation samples are pseudo-unpaired, above 0.5 real A images are removed
                    (0.75 -> n/2 real A + 3n/2 pseudo-pairs; 1.0 -> 2n pseudo-pairs and no real A).
                    When P > n a b is used by more than one pseudo-sample, each with its own parameters.
- ``explicit``: aligned pairs for Pix2Pix: the fully pseudo-paired set (M(b), b) for n real b, or
  (``pairs_from='true'``) n true pairs of a paired source.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from ..errors import UserError

KINDS = ("alpha-paired", "pseudo", "explicit")
AUGMENTATIONS = ("none", "natural", "pseudo-unpaired", "pseudo-paired")
SELECTIONS = ("random", "kmedoids")
PAPER_PSEUDO_ALPHAS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Recipe:
    kind: str = "alpha-paired"
    task: str = "eyeglasses"  # eyeglasses | smile | folders (A/B given by the folder layout)
    n: int = 200  # real images per domain before augmentation
    alpha: float = 0.5  # alpha-paired: share of A with its true counterpart in B
    augmentation: str = "pseudo-paired"  # pseudo only
    pseudo_alpha: float = 0.5  # pseudo-paired only: share of A that are pseudo-pairs (Table 5)
    pairs_from: str = "pseudo"  # explicit only: pseudo | true
    n_test: int = 100  # test images per domain (from the test partition only)
    selection: str = "random"  # which A images get pairs: random | kmedoids (paper 002)
    paired_copies: int = 0  # extra on-disk copies of each paired sample in both domains (paper 002); 0 = none
    # alpha-paired: the unpaired part of B comes only from identities that are not in A, so no A face has another
    # photo of itself in B (a near-pair that would blur the alpha effect); False mixes them as before
    disjoint_identities: bool = True
    image_size: int = 0  # 0 keeps the source's size; else centre square crop + resize to this size
    seed: int = 0

    def validate(self) -> "Recipe":
        if self.kind not in KINDS:
            raise UserError(f"Unknown recipe kind '{self.kind}'; choose one of: {', '.join(KINDS)}.")
        if not (0.0 <= float(self.alpha) <= 1.0):
            raise UserError(f"alpha must be between 0 and 1, got {self.alpha}.")
        if not (0.0 <= float(self.pseudo_alpha) <= 1.0):
            raise UserError(f"pseudo alpha must be between 0 and 1, got {self.pseudo_alpha}.")
        if self.augmentation not in AUGMENTATIONS:
            raise UserError(f"Unknown augmentation '{self.augmentation}'; choose one of: {', '.join(AUGMENTATIONS)}.")
        if self.selection not in SELECTIONS:
            raise UserError(f"Unknown selection '{self.selection}'; choose one of: {', '.join(SELECTIONS)}.")
        if self.pairs_from not in ("pseudo", "true"):
            raise UserError("pairs_from must be 'pseudo' or 'true'.")
        if int(self.n) < 1:
            raise UserError(f"N must be at least 1, got {self.n}.")
        if int(self.n_test) < 0:
            raise UserError(f"The test size must not be negative, got {self.n_test}.")
        if int(self.paired_copies) < 0 or int(self.paired_copies) > 20:
            raise UserError("Copies of paired samples must be between 0 and 20.")
        if self.image_size and not (32 <= int(self.image_size) <= 512):
            raise UserError(f"Image size must be between 32 and 512 pixels (or 0 to keep the source's), got {self.image_size}.")
        return self

    @property
    def needs_synthesizer(self) -> bool:
        if self.kind == "pseudo":
            return self.augmentation in ("pseudo-unpaired", "pseudo-paired")
        return self.kind == "explicit" and self.pairs_from == "pseudo"

    def short_name(self) -> str:
        if self.kind == "alpha-paired":
            body = f"alpha{self.alpha:.2f}"
        elif self.kind == "pseudo":
            body = self.augmentation + (f"{self.pseudo_alpha:.2f}" if self.augmentation == "pseudo-paired" else "")
        else:
            body = f"explicit-{self.pairs_from}"
        sel = "-kmedoids" if self.selection == "kmedoids" else ""
        return f"{self.task}-{body}{sel}-n{self.n}-s{self.seed}"

    def label(self) -> str:
        """A few characters for tables and captions: 'α0.50', 'pseudo-paired 1.00', 'none', 'explicit pseudo'."""
        if self.kind == "alpha-paired":
            body = f"α{self.alpha:.2f}"
        elif self.kind == "pseudo":
            body = self.augmentation + (f" {self.pseudo_alpha:.2f}" if self.augmentation == "pseudo-paired" else "")
        else:
            body = f"explicit {self.pairs_from}"
        return body + (" kmedoids" if self.selection == "kmedoids" else "")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        known = {f.name: f for f in fields(cls)}
        data = dict(data)
        if "balance_copies" in data:  # a manifest written before the two balancing settings had their own names
            data.setdefault("paired_copies", data.pop("balance_copies"))
            data.setdefault("disjoint_identities", False)  # those builds mixed A's identities into B
        unknown = set(data) - set(known)
        if unknown:
            raise UserError(f"Unknown recipe field(s): {', '.join(sorted(unknown))}.")
        clean = {}
        for key, value in data.items():
            kind = type(getattr(cls(), key))
            if kind is bool and not isinstance(value, bool):
                raise UserError(f"Recipe field '{key}' must be true or false, got {value!r}.")
            try:
                clean[key] = kind(value)
            except (TypeError, ValueError):
                raise UserError(f"Recipe field '{key}' must be a {kind.__name__}, got {value!r}.")
        return cls(**clean).validate()

    @classmethod
    def from_form(cls, values: dict, *, blank: str = "default") -> "Recipe":
        """The one way a form or a command line makes a Recipe: ``values`` maps field names to what the widgets or
        flags hold, in UI types (a whole float such as 3.0 from a number box for an int field, a str from a radio).

        A missing field takes its default; so does a None or empty value, unless ``blank="error"``, where it is
        "Please fill in ...". A bad value (not a number, not whole, out of range, unknown choice or field) is one
        sentence (UserError). Ranges are the ones ``validate`` checks, plus a seed of 0 to 2**31 - 1.
        """
        if blank not in ("default", "error"):
            raise ValueError(f"blank must be 'default' or 'error', got {blank!r}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"Unknown recipe field(s): {', '.join(sorted(unknown))}.")
        defaults, clean = cls(), {}
        for key, value in values.items():
            label = FORM_LABELS.get(key, key.replace("_", " "))
            said = label[0].upper() + label[1:]
            if value is None or (isinstance(value, str) and not value.strip()):
                if blank == "error":
                    raise UserError(f"Please fill in {label}.")
                continue
            kind = type(getattr(defaults, key))
            if kind is bool:
                if value not in (True, False):  # also 0 and 1
                    raise UserError(f"{said} must be true or false, got {value!r}.")
                clean[key] = bool(value)
            elif kind is str:
                clean[key] = str(value)
            else:
                try:
                    x = float(value)
                except (TypeError, ValueError):
                    raise UserError(f"{said} must be a number, got {value!r}.")
                if x != x or x in (float("inf"), float("-inf")):
                    raise UserError(f"{said} must be a finite number, got {value}.")
                if kind is int and x != int(x):
                    raise UserError(f"{said} must be a whole number, got {value}.")
                clean[key] = kind(x)
        if not 0 <= clean.get("seed", 0) <= 2**31 - 1:
            raise UserError(f"The seed must be between 0 and {2**31 - 1}, got {clean['seed']}.")
        return cls(**clean).validate()

    @property
    def alpha_target(self) -> float | None:
        """The share of paired A images the recipe asks for (a composition's ``alpha_target``); None when the
        recipe does not set one (unpaired, natural and pseudo-unpaired augmentation, explicit pairs)."""
        return alpha_target_of(self.to_dict())

    def with_(self, **changes) -> "Recipe":
        return replace(self, **changes).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


# What a form calls each field, for its messages (the Datasets tab's wording).
FORM_LABELS = {
    "kind": "the recipe kind", "task": "the task", "n": "N per domain", "alpha": "alpha",
    "augmentation": "the augmentation", "pseudo_alpha": "pseudo alpha", "pairs_from": "where explicit pairs come from",
    "n_test": "the number of test images per domain", "selection": "which samples get pairs",
    "paired_copies": "the number of extra copies", "disjoint_identities": "whether A's identities stay out of B",
    "image_size": "the image size", "seed": "the seed",
}


def alpha_target_of(recipe: dict) -> float | None:
    """``Recipe.alpha_target`` for a recipe as a manifest stores it (fields it lacks take their defaults)."""
    get = lambda key: recipe.get(key, getattr(Recipe, key))  # noqa: E731
    if get("kind") == "alpha-paired":
        return get("alpha")
    if get("kind") == "pseudo" and get("augmentation") == "pseudo-paired":
        return get("pseudo_alpha")
    return None


def pseudo_counts(n: int, augmentation: str, pseudo_alpha: float) -> dict:
    """How many of each kind of A image a pseudo recipe makes (B is always the n real images).

    Returns {"real": r, "natural": m, "pseudo_paired": p, "pseudo_unpaired": u}.
    """
    if augmentation == "none":
        return {"real": n, "natural": 0, "pseudo_paired": 0, "pseudo_unpaired": 0}
    if augmentation == "natural":
        return {"real": n, "natural": n, "pseudo_paired": 0, "pseudo_unpaired": 0}
    if augmentation == "pseudo-unpaired":
        return {"real": n, "natural": 0, "pseudo_paired": 0, "pseudo_unpaired": n}
    paired = int(round(pseudo_alpha * 2 * n))
    if paired <= n:
        return {"real": n, "natural": 0, "pseudo_paired": paired, "pseudo_unpaired": n - paired}
    return {"real": 2 * n - paired, "natural": 0, "pseudo_paired": paired, "pseudo_unpaired": 0}
