"""The example submissions in submitted/ are built from examples/ and the current release."""
import pytest

from assignment import examples


def test_submitted_examples_are_current():
    assert examples.stale_examples() == [], "run `make examples` and commit submitted/"


def test_parse_answers_reads_blocks_and_rejects_duplicates():
    text = "# comment\n### cell: a\nx = 1\n\n### cell: b\nsome text\n"
    assert examples.parse_answers(text) == {"a": "x = 1", "b": "some text"}
    with pytest.raises(ValueError):
        examples.parse_answers("### cell: a\n1\n### cell: a\n2\n")


def test_fill_release_rejects_unknown_cells():
    with pytest.raises(KeyError):
        examples.fill_release({"no_such_cell": "pass"})
