"""Decoding a CTC recogniser's per-frame probabilities into a value and its confidence (pure numpy).

A probability matrix is float [T, C]: T frames (left to right), C classes, each row summing to 1; class 0 is
the CTC blank and class i > 0 is the character `table[i]` (`table[0]` is unused). A string's CTC probability
P(text | crop) is the sum over every frame alignment that collapses to it (repeats merged, blanks removed).

- no pattern, no lexicon: the best path (argmax per frame, collapsed); its confidence is the lowest of its
  characters' peak probabilities (it separates right from wrong reads better than P(text), the mean or
  the product of the peaks: benchmarks/README.md);
- lexicon: the entry with the highest CTC probability (forward algorithm over all entries at once);
- pattern: the candidates of a CTC prefix beam search, rescored exactly, that `re.fullmatch` it; a group
  named `value` picks the part reported (`(?P<value>[0-9]+)[.)]?` with allow-list "0123456789.)" reads the
  box "12)" as "12": the terminator is read as itself, not mistaken for a digit). The value reported is the
  one with the highest P(value | crop), summed over the candidate strings that give it ("12." and "12)"
  both give "12"). When none fits the value is "" with score 0.0 (a non-empty value always fits).

With a lexicon or a pattern the confidence is the value's margin over the runner-up reading,
(P(value) - P(runner-up)) / (P(value) + P(runner-up)): 0 for a tie, 1 when nothing else can be read. The
runner-up is the next value or the likeliest candidate string that does not fit the pattern, so a crop whose
likeliest reading is no value at all is doubtful too. It separates right from wrong reads better than the
value's own probability does (benchmarks/README.md).

An allow-list restricts the scores before decoding: disallowed classes are dropped and every frame is
renormalised over the blank and the allowed characters, so each frame is read as its likeliest allowed
reading (an 'I' that was a '1' becomes '1') instead of a string whose characters are deleted afterwards.
A visible character outside the allow-list may turn into its allowed look-alike (')' as '1'): allow it and
report a `value` group of the pattern instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detforge.errors import ConfigError
from detforge.reading.base import TextRead

__all__ = [
    "CTCDecoder",
    "Lattice",
    "best_path",
    "best_path_confidence",
    "ctc_log_likelihoods",
    "prefix_beam_search",
    "restrict",
]

_NEG_INF = -np.inf
_FLOOR = 1e-30  # probabilities are clipped here before the log, so log(0) never appears


def restrict(probs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The [T, len(columns)] matrix of `probs` [T, C] kept to `columns` (which must start with the blank, 0),
    each frame renormalised to sum to 1. A frame with no mass left becomes all blank. (Renormalising, rather
    than giving the dropped mass to the blank, keeps a frame whose likeliest character is disallowed readable
    as its likeliest allowed one.)"""
    kept = np.asarray(probs, dtype=np.float64)[:, columns]
    total = kept.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    if empty.any():
        kept[empty] = 0.0
        kept[empty, 0] = 1.0
        total[empty] = 1.0
    return kept / total


def best_path(probs: np.ndarray) -> list[int]:
    """Class indices of the best path of `probs` [T, C]: argmax per frame, repeats merged, blanks removed."""
    if probs.shape[0] == 0:
        return []
    path = np.asarray(probs).argmax(axis=1)
    keep = np.ones(path.shape, dtype=bool)
    keep[1:] = path[1:] != path[:-1]
    return [int(c) for c in path[keep] if c != 0]


def best_path_confidence(probs: np.ndarray) -> float:
    """Confidence in the best path of `probs` [T, C]: for each character read, its highest probability over
    the frames of its run; the lowest of these (one doubtful character makes the value doubtful). For an
    empty read, the lowest blank probability over the frames. In [0, 1]; 0.0 for no frames."""
    arr = np.asarray(probs, dtype=np.float64)
    if arr.shape[0] == 0:
        return 0.0
    path = arr.argmax(axis=1)
    top = arr[np.arange(arr.shape[0]), path]
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    run_max = np.maximum.reduceat(top, starts)
    chars = path[starts] != 0
    value = run_max[chars].min() if chars.any() else top.min()
    return float(min(1.0, max(0.0, value)))


@dataclass(frozen=True)
class Lattice:
    """Label sequences prepared for the CTC forward algorithm: `ext` [E, S] the class of each state (blank at
    even states, the labels at odd ones, S = 2 * longest + 1), `skip` [E, S] where a state may be reached
    from two states back, `lengths` [E] and `valid` [E] (False where a label is negative: a character the
    recogniser cannot produce)."""

    ext: np.ndarray
    skip: np.ndarray
    lengths: np.ndarray
    valid: np.ndarray

    @classmethod
    def of(cls, labels: Sequence[Sequence[int]]) -> Lattice:
        n = len(labels)
        lengths = np.array([len(seq) for seq in labels], dtype=np.int64).reshape(n)
        states = 2 * int(lengths.max(initial=0)) + 1
        ext = np.zeros((n, states), dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        for e, seq in enumerate(labels):
            if len(seq):
                arr = np.asarray(seq, dtype=np.int64)
                valid[e] = bool((arr > 0).all())
                ext[e, 1 : 2 * len(seq) : 2] = np.where(arr > 0, arr, 0)
        # a skip over the blank between two labels is allowed unless both labels are the same character
        skip = np.zeros((n, states), dtype=bool)
        skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
        return cls(ext, skip, lengths, valid)


def ctc_log_likelihoods(log_probs: np.ndarray, labels: Sequence[Sequence[int]] | Lattice) -> np.ndarray:
    """log P(labels[e] | frames) for every label sequence, by the CTC forward algorithm run over all of them
    at once. `log_probs` [T, C] natural-log class probabilities (class 0 blank); `labels` sequences of class
    indices in 1..C-1 (a negative index marks a character the recogniser cannot produce: -inf), or a
    `Lattice` of them prepared once. Returns float64 [E]; -inf where a sequence cannot be aligned (e.g.
    longer than the frames allow)."""
    lattice = labels if isinstance(labels, Lattice) else Lattice.of(labels)
    ext, skip, lengths, valid = lattice.ext, lattice.skip, lattice.lengths, lattice.valid
    n, states = ext.shape
    frames = log_probs.shape[0]
    if n == 0 or frames == 0:
        return np.full(n, _NEG_INF)
    # linear-domain forward pass, each entry's row rescaled to sum 1 every frame (the scales' logs add up)
    emit = np.exp(log_probs)[:, ext]  # [T, E, S]
    in_range = np.arange(states)[None, :] <= 2 * lengths[:, None]
    alpha = np.zeros((n, states))
    alpha[:, 0] = emit[0, :, 0]
    if states > 1:
        alpha[:, 1] = emit[0, :, 1]
    alpha *= in_range
    log_scale = np.zeros(n)
    for t in range(frames):
        if t:
            moved = alpha.copy()
            moved[:, 1:] += alpha[:, :-1]
            moved[:, 2:] += np.where(skip[:, 2:], alpha[:, :-2], 0.0)
            alpha = moved * emit[t] * in_range
        total = alpha.sum(axis=1)
        alive = total > 0
        alpha[alive] /= total[alive, None]
        with np.errstate(divide="ignore"):
            log_scale += np.log(total)
    rows = np.arange(n)
    final = alpha[rows, 2 * lengths] + np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(final) + log_scale
    out[~np.isfinite(out) | ~valid] = _NEG_INF
    return out


def prefix_beam_search(
    probs: np.ndarray, *, beam: int = 16, per_frame: int = 8, min_prob: float = 1e-3
) -> list[tuple[tuple[int, ...], float]]:
    """Candidate label sequences of `probs` [T, C] (class 0 blank) by CTC prefix beam search, best first, as
    (class indices, approximate probability). Per frame only the `per_frame` likeliest classes above
    `min_prob` (and always the blank) extend the `beam` best prefixes."""
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (1.0, 0.0)}  # prefix -> (P ends in blank, in label)
    for row in np.asarray(probs, dtype=np.float64):
        k = min(per_frame, row.size)
        top = np.argpartition(row, row.size - k)[row.size - k :]
        order = top[np.argsort(row[top])[::-1]]
        classes = [int(c) for c in order if c != 0 and row[c] >= min_prob]
        blank = float(row[0])
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            entry = nxt.setdefault(prefix, [0.0, 0.0])
            entry[0] += (pb + pnb) * blank
            if prefix:
                entry[1] += pnb * float(row[prefix[-1]])  # the last label repeated, not a new one
            for c in classes:
                p = float(row[c])
                extended = nxt.setdefault((*prefix, c), [0.0, 0.0])
                if prefix and prefix[-1] == c:
                    extended[1] += pb * p  # a repeated character needs a blank between
                else:
                    extended[1] += (pb + pnb) * p
        ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    return [(k, v[0] + v[1]) for k, v in sorted(beams.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))]


@dataclass
class CTCDecoder:
    """Turns one crop's probability matrix into a TextRead, with an optional allow-list, pattern and lexicon.

    `table[i]` is the character of class i (`table[0]`, the blank, is ignored). `allow` keeps only these
    characters (None: the whole table; with a lexicon and no `allow`, the lexicon's characters). A pattern
    is matched in full; a lexicon's value is always one of its entries. ConfigError when an allow-list or a
    lexicon entry holds characters the recogniser cannot produce.
    """

    table: Sequence[str]
    allow: str | None = None
    pattern: str | None = None
    lexicon: Sequence[str] | None = None
    beam: int = 16
    _columns: np.ndarray | None = field(init=False, default=None)
    _chars: list[str] = field(init=False, default_factory=list)
    _regex: re.Pattern[str] | None = field(init=False, default=None)
    _lexicon_labels: list[list[int]] = field(init=False, default_factory=list)
    _lexicon_lattice: Lattice | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        index = {ch: i for i, ch in enumerate(self.table) if i > 0}
        allow = self.allow
        if allow is None and self.lexicon is not None:
            allow = "".join(sorted({ch for value in self.lexicon for ch in value}))
        if allow is not None:
            missing = sorted({ch for ch in allow if ch not in index})
            if missing:
                raise ConfigError(
                    f"read.allow: the recogniser cannot produce {''.join(missing)!r}; expected characters of its "
                    "character table"
                )
            cols = sorted({index[ch] for ch in allow})
            self._columns = np.array([0, *cols], dtype=np.int64)
            self._chars = ["", *(self.table[c] for c in cols)]
        else:
            self._chars = list(self.table)
        self._regex = re.compile(self.pattern) if self.pattern is not None else None
        if self.lexicon is not None:
            local = {ch: i for i, ch in enumerate(self._chars) if i > 0}
            self._lexicon_labels = [[local.get(ch, -1) for ch in value] for value in self.lexicon]
            self._lexicon_lattice = Lattice.of(self._lexicon_labels)
            if all(any(i < 0 for i in labels) for labels in self._lexicon_labels):
                raise ConfigError(
                    f"read.lexicon: no value can be read with the allow-list {allow!r} (e.g. "
                    f"{self.lexicon[0]!r}); expected values made of allowed characters"
                )

    def restricted(self, probs: np.ndarray) -> np.ndarray:
        """`probs` [T, C] with the allow-list applied ([T, 1 + allowed] renormalised), or as float64 when
        there is no allow-list."""
        if self._columns is None:
            return np.asarray(probs, dtype=np.float64)
        return restrict(probs, self._columns)

    def text_of(self, labels: Sequence[int]) -> str:
        """The string of class indices of the (restricted) matrix."""
        return "".join(self._chars[i] for i in labels)

    def value_of(self, text: str) -> str:
        """The value reported for a `text` that fits the pattern: its group named `value` when the pattern
        has one (e.g. `(?P<value>[0-9]+)[.)]?` reports "12" for "12)"), else the whole text."""
        if self._regex is None or "value" not in self._regex.groupindex:
            return text
        match = self._regex.fullmatch(text)
        return (match.group("value") or "") if match else ""

    def decode(self, probs: np.ndarray) -> TextRead:
        """The value read from `probs` [T, C] (the recogniser's softmax output for one crop) and its
        confidence in [0, 1] (see the module docstring: the margin over the runner-up value with a lexicon or
        pattern, the weakest character's peak probability otherwise)."""
        p = self.restricted(probs)
        if p.shape[0] == 0:
            return TextRead("", 0.0)
        log_p = np.log(np.clip(p, _FLOOR, None))
        if self.lexicon is not None:
            ll = ctc_log_likelihoods(log_p, self._lexicon_lattice or self._lexicon_labels)
            return _best_value(list(self.lexicon), ll)
        if self._regex is not None:
            candidates = [labels for labels, _ in prefix_beam_search(p, beam=self.beam)]
            greedy = tuple(best_path(p))
            if greedy not in candidates:
                candidates.append(greedy)
            texts = [self.text_of(c) for c in candidates]
            values = [self.value_of(t) if self._regex.fullmatch(t) else None for t in texts]
            if all(v is None for v in values):
                return TextRead("", 0.0)
            return _best_value(values, ctc_log_likelihoods(log_p, candidates))
        return TextRead(self.text_of(best_path(p)), best_path_confidence(p))


def _best_value(values: Sequence[str | None], log_likelihoods: np.ndarray) -> TextRead:
    """The value with the highest probability summed over the strings that give it (`values[i]` has log
    probability `log_likelihoods[i]`; None marks a string that does not fit the pattern: a competitor only),
    scored by its margin over the runner-up reading, (P(value) - P(runner-up)) / (P(value) + P(runner-up)),
    the runner-up being the next value or the likeliest string that does not fit, whichever is likelier.
    In [0, 1]: 0 for a tie, 1 when nothing else can be read. TextRead("", 0.0) when no value can be read."""
    finite = np.isfinite(log_likelihoods)
    if not finite.any():
        return TextRead("", 0.0)
    shift = float(np.max(log_likelihoods[finite]))  # relative probabilities: the margin is scale-free
    totals: dict[str, float] = {}
    outside = 0.0
    for value, ll in zip(values, log_likelihoods, strict=True):
        if not np.isfinite(ll):
            continue
        prob = float(np.exp(ll - shift))
        if value is None:
            outside = max(outside, prob)
        else:
            totals[value] = totals.get(value, 0.0) + prob
    if not totals:
        return TextRead("", 0.0)
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
    value, best = ranked[0]
    runner_up = max(ranked[1][1] if len(ranked) > 1 else 0.0, outside)
    return TextRead(value, float(min(1.0, max(0.0, (best - runner_up) / (best + runner_up)))))
