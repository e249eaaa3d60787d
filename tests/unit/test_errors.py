from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from recordagent.errors import (
    DataLoadError,
    LoadProblem,
    UserError,
    field_path,
    validation_problems,
)


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


class _Dose(BaseModel):
    drug: str
    mg: float = Field(gt=0)

    @field_validator("drug")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != "lenalidomide":
            raise ValueError(f"unknown drug {value!r}")
        return value


def test_validation_problems_name_each_field_and_drop_pydantics_prefix():
    with pytest.raises(ValidationError) as caught:
        _Dose.model_validate({"drug": "aspirin", "mg": -5})
    assert validation_problems(caught.value) == [
        "drug: unknown drug 'aspirin'",
        "mg: Input should be greater than 0",
    ]
    assert validation_problems(caught.value, located=False) == [
        "unknown drug 'aspirin'",
        "Input should be greater than 0",
    ]


def test_a_problem_of_the_whole_object_is_named_by_whole():
    with pytest.raises(ValidationError) as caught:
        _Dose.model_validate(["not", "a", "mapping"])
    assert validation_problems(caught.value, whole="(dose)") == [
        "(dose): Input should be a valid dictionary or instance of _Dose"
    ]


def test_field_path_joins_nested_locations():
    assert field_path(("labs", 0, "value")) == "labs.0.value"
    assert field_path(()) == ""
