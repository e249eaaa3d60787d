from __future__ import annotations

import pytest

from recordagent.errors import DataLoadError, LoadProblem, UserError


def test_problem_locations_render_file_row_and_column():
    assert (
        str(LoadProblem("labs.csv", "bad", 3, "value_num"))
        == "labs.csv, row 3, column 'value_num': bad"
    )
    assert str(LoadProblem("labs.csv", "unreadable")) == "labs.csv: unreadable"


def test_data_load_error_is_a_user_error_with_its_own_exit_code():
    error = DataLoadError([LoadProblem("a.csv", "x", 1, "c")], total=5)
    assert isinstance(error, UserError)
    assert error.exit_code == 3
    assert "5 problems" in str(error)
    assert "and 4 more problem(s) not shown" in str(error)
    assert "store is unchanged" in str(error)


def test_data_load_error_needs_a_problem():
    with pytest.raises(ValueError):
        DataLoadError([])
