"""CTC decoding on hand-made probability matrices: best path, allow-list, lexicon, pattern, confidence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detforge.errors import ConfigError
from detforge.reading.ctc import (
    CTCDecoder,
    Lattice,
    best_path,
    best_path_confidence,
    ctc_log_likelihoods,
    prefix_beam_search,
    restrict,
)

TABLE = ("", "1", "2", ".", "I", ")")  # class 0 is the blank
B, ONE, TWO, DOT, EYE, PAREN = range(6)


def frames(*rows: dict[int, float]) -> np.ndarray:
    """A [T, 6] probability matrix: each row's given classes, the rest of its mass on the blank."""
    out = np.zeros((len(rows), len(TABLE)))
    for t, row in enumerate(rows):
        for c, p in row.items():
            out[t, c] = p
        out[t, B] += 1.0 - out[t].sum()
    return out


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return tuple(c for c in merged if c != B)


def test_best_path_collapses_repeats_and_removes_blanks() -> None:
    m = frames({ONE: 0.9}, {ONE: 0.8}, {}, {ONE: 0.9}, {TWO: 0.7}, {TWO: 0.9}, {})
    assert best_path(m) == [ONE, ONE, TWO]
    assert CTCDecoder(TABLE).decode(m).text == "112"
    assert CTCDecoder(TABLE).decode(frames({}, {})).text == ""
    assert CTCDecoder(TABLE).decode(np.zeros((0, len(TABLE)))).text == ""


def test_forward_algorithm_equals_the_sum_over_every_alignment() -> None:
    rng = np.random.default_rng(3)
    m = rng.dirichlet(np.ones(3), size=4)  # T=4 frames, classes blank/1/2
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(3), repeat=4):
        key = collapse(path)
        totals[key] = totals.get(key, 0.0) + float(np.prod([m[t, c] for t, c in enumerate(path)]))
    labels = [(), (1,), (1, 1), (1, 2), (2, 1, 2), (1, 1, 1), (1, 2, 1, 2)]
    got = np.exp(ctc_log_likelihoods(np.log(m), labels))
    want = [totals.get(seq, 0.0) for seq in labels]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert sum(totals.values()) == pytest.approx(1.0)
    assert np.exp(ctc_log_likelihoods(np.log(m), [(1, 1, 1, 1, 1)]))[0] == 0.0  # needs 9 frames
    assert ctc_log_likelihoods(np.log(m), [(1, -1)])[0] == -np.inf  # a character the model lacks


def test_forward_algorithm_on_long_inputs_and_prepared_lattices() -> None:
    m = np.full((500, 2), 0.5)  # 500 frames, blank or '1' at even odds
    ll = ctc_log_likelihoods(np.log(m), [(), (1,)])
    assert ll[0] == pytest.approx(500 * np.log(0.5))  # 0.5**500 underflows nowhere
    assert np.isfinite(ll[1]) and ll[1] > ll[0]
    labels = [(1,), (1, 2), (2, 2), ()]
    r = np.random.default_rng(0).dirichlet(np.ones(3), size=6)
    np.testing.assert_allclose(
        ctc_log_likelihoods(np.log(r), Lattice.of(labels)), ctc_log_likelihoods(np.log(r), labels)
    )


def test_allow_list_applies_to_scores_before_decoding() -> None:
    # the model prefers 'I' but the second choice is '1': the allow-list reads '1'; deleting the 'I' from
    # the decoded string afterwards would have read nothing
    m = frames({EYE: 0.6, ONE: 0.3}, {}, {TWO: 0.8}, {})
    assert CTCDecoder(TABLE).decode(m).text == "I2"
    assert CTCDecoder(TABLE, allow="12").decode(m).text == "12"
    r = restrict(m, np.array([B, ONE, TWO]))
    np.testing.assert_allclose(r.sum(axis=1), 1.0)
    assert r[0, 1] == pytest.approx(0.3 / 0.4)
    # a frame with no allowed mass at all becomes blank
    assert restrict(frames({EYE: 1.0}), np.array([B, ONE]))[0].tolist() == [1.0, 0.0]


def test_allow_list_with_characters_the_model_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot produce 'x'"):
        CTCDecoder(TABLE, allow="12x")


def test_lexicon_picks_the_likeliest_entry() -> None:
    # best path reads "1.2", not a lexicon value; of the entries "12" is far likelier than "11" or "21"
    m = frames({ONE: 0.9}, {DOT: 0.7, TWO: 0.05}, {TWO: 0.8}, {})
    assert CTCDecoder(TABLE).decode(m).text == "1.2"
    read = CTCDecoder(TABLE, lexicon=["11", "21", "12"]).decode(m)
    assert read.text == "12"
    # the score is the margin over the runner-up entry: (P(12) - P(r)) / (P(12) + P(r)), r = 11 or 21
    log_p = np.log(np.clip(restrict(m, np.array([B, ONE, TWO])), 1e-30, None))
    p = np.exp(ctc_log_likelihoods(log_p, [[1, 1], [2, 1], [1, 2]]))
    assert read.score == pytest.approx(float((p[2] - max(p[0], p[1])) / (p[2] + max(p[0], p[1]))))
    # the only entry that can be read at all is certain against the others
    assert CTCDecoder(TABLE, lexicon=["12", "1221"]).decode(frames({ONE: 0.9}, {TWO: 0.9})).score == 1.0
    # the lexicon's own characters are the allow-list: with "1.2" in it, the '.' counts
    assert CTCDecoder(TABLE, lexicon=["1.2", "12"]).decode(m).text == "1.2"


def test_lexicon_that_cannot_be_read_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot produce"):
        CTCDecoder(TABLE, lexicon=["12", "1x"])
    with pytest.raises(ConfigError, match="no value can be read"):
        CTCDecoder(TABLE, allow="12", lexicon=["1.", "2."])


def test_pattern_picks_the_best_string_that_fits() -> None:
    # best path "121"; the pattern wants exactly two characters: "12" (the doubtful last '1' dropped)
    m = frames({ONE: 0.9}, {}, {TWO: 0.9}, {}, {ONE: 0.55}, {})
    assert CTCDecoder(TABLE).decode(m).text == "121"
    read = CTCDecoder(TABLE, pattern="[12]{2}").decode(m)
    assert read.text == "12"
    assert read.score == 0.0  # the likeliest reading, "121", is no value: as doubtful as it gets
    clear = CTCDecoder(TABLE, pattern="[12]{2}").decode(frames({ONE: 0.9}, {}, {TWO: 0.9}, {}, {ONE: 0.05}, {}))
    assert clear.text == "12" and 0.5 < clear.score < 1.0
    # nothing fits: "" with score 0
    assert CTCDecoder(TABLE, pattern="[12]{5}").decode(m) == CTCDecoder(TABLE, pattern="I+").decode(m)
    assert CTCDecoder(TABLE, pattern="I+").decode(m).text == ""
    assert CTCDecoder(TABLE, pattern="I+").decode(m).score == 0.0


def test_pattern_value_group_reports_the_value_without_its_terminator() -> None:
    m = frames({ONE: 0.9}, {}, {TWO: 0.9}, {PAREN: 0.6, ONE: 0.35}, {})
    assert CTCDecoder(TABLE, allow="12").decode(m).text == "121"  # ')' mistaken for its look-alike
    read = CTCDecoder(TABLE, allow="12)", pattern=r"(?P<value>[12]+)[.)]?").decode(m)
    assert read.text == "12"


def test_confidence_orders_clear_above_doubtful_reads() -> None:
    clear = frames({ONE: 0.98}, {}, {TWO: 0.97}, {})
    doubtful = frames({ONE: 0.98}, {}, {TWO: 0.5, ONE: 0.4}, {})  # "11" nearly as likely as "12"
    for decoder in (CTCDecoder(TABLE), CTCDecoder(TABLE, pattern="[12]+"), CTCDecoder(TABLE, lexicon=["12", "11"])):
        a, b = decoder.decode(clear), decoder.decode(doubtful)
        assert a.text == b.text == "12"
        assert 0.0 <= b.score < a.score <= 1.0
    assert best_path_confidence(doubtful) == pytest.approx(0.5)
    assert best_path_confidence(frames({}, {EYE: 0.3})) == pytest.approx(0.7)  # empty read: blank certainty


def test_pattern_value_is_chosen_by_its_summed_probability() -> None:
    # the value "2" sums its strings "2." and "2)" (0.3 + 0.3); "1" sums "1." and "1)" (0.35)
    m = frames({ONE: 0.35, TWO: 0.6}, {DOT: 0.5, PAREN: 0.5})
    decoder = CTCDecoder(TABLE, allow="12.)", pattern=r"(?P<value>[12])[.)]")
    read = decoder.decode(m)
    assert read.text == "2"
    assert read.score == pytest.approx((0.6 - 0.35) / (0.6 + 0.35), rel=1e-6)  # margin over the value "1"


def test_prefix_beam_search_ranks_candidates_by_probability() -> None:
    m = frames({ONE: 0.6, TWO: 0.4}, {})
    candidates = dict(prefix_beam_search(m))
    assert list(candidates)[:2] == [(ONE,), (TWO,)]
    assert candidates[(ONE,)] == pytest.approx(0.6)
    # a repeated character needs a blank between its two copies
    m2 = frames({ONE: 0.9}, {ONE: 0.9})
    found = dict(prefix_beam_search(m2))
    assert found[(ONE,)] == pytest.approx(0.81 + 0.09 + 0.09)
    assert found.get((ONE, ONE), 0.0) == 0.0
    assert found[()] == pytest.approx(0.01)
