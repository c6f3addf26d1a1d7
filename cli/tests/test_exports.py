from datetime import UTC, datetime
from pathlib import Path

import pytest
from cohort_cli.exports import read_cohort_export
from cohort_cli.identifiers import Identifier
from cohort_cli.records import InputFileError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_give_every_identifier_in_file_order(tmp_path):
    path = write(
        tmp_path,
        "cohort.csv",
        "user_id,device_id,alias_name,alias_label,$name\nu1,,,,Ann\n,d9,,,\nu2,d2,a@x.com,email,Bob\n\nu1,,,,again\n",
    )
    members = read_cohort_export(path)
    assert list(members) == [
        Identifier.external_id("u1"),
        Identifier.device_id("d9"),
        Identifier.external_id("u2"),
        Identifier.device_id("d2"),
        Identifier.alias("a@x.com", "email"),
    ]


def test_json_lines_accept_numbers_and_timestamps(tmp_path):
    path = write(
        tmp_path,
        "cohort.jsonl",
        '{"user_id": 42, "timestamp": "2009-12-31T23:00:00"}\n\n'
        '{"alias_name": "a@x.com", "alias_label": "email", "device_id": null}\n',
    )
    members = read_cohort_export(path)
    assert members == {
        Identifier.external_id("42"): datetime(2009, 12, 31, 23, tzinfo=UTC),
        Identifier.alias("a@x.com", "email"): None,
    }


def test_format_is_sniffed_without_a_known_suffix(tmp_path):
    assert read_cohort_export(write(tmp_path, "export.txt", '{"user_id": "u1"}\n')) == {
        Identifier.external_id("u1"): None
    }
    assert read_cohort_export(write(tmp_path, "export2.txt", "user_id\nu1\n")) == {Identifier.external_id("u1"): None}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.csv", "user_id,alias_name,alias_label\nu1,,\n,a@x.com,\n", "c.csv, line 3, column 'alias_label': missing"),
        ("c.csv", "user_id,alias_name,alias_label\n,,email\n", "line 2, column 'alias_name': missing"),
        ("c.csv", "user_id,device_id\nu1,\n,\nu2,d2,x\n", "line 4: 3 values but the header has 2 columns"),
        ("c.csv", "user_id,device_id,alias_name\nu1,,\n ,,x\n", "line 3, column 'alias_label': missing"),
        ("c.csv", "email,name\na@x.com,Ann\n", "line 1: the header names none of the columns"),
        ("c.csv", "user_id,timestamp\nu1,yesterday\n", "line 2, column 'timestamp': 'yesterday' is not an ISO-8601"),
        ("c.csv", "user_id\n" + "x" * 513 + "\n", "line 2, column 'user_id': longer than 512 characters"),
        ("c.jsonl", '{"user_id": "u1"}\n{"user_id": "u2"\n', "c.jsonl, line 2: not valid JSON"),
        ("c.jsonl", '{"user_id": "u1"}\n["u2"]\n', "line 2: each line must be a JSON object"),
        ("c.jsonl", '{"user_id": true}\n', "line 1, column 'user_id': must be a string"),
        ("c.jsonl", '{"user_id": "u1"}\n\n{"name": "Ann"}\n', "line 3: no identifier"),
    ],
)
def test_bad_rows_name_line_and_column(tmp_path, name, text, expected):
    with pytest.raises(InputFileError) as raised:
        read_cohort_export(write(tmp_path, name, text))
    assert expected in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_cohort_export(tmp_path / "nope.csv")
