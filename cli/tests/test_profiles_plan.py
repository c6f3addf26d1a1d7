from pathlib import Path

import pytest
from cohort_cli.profiles import profile_requests, read_profiles
from cohort_cli.records import InputFileError


def plan_of(tmp_path: Path, text: str):
    path = tmp_path / "profiles.csv"
    path.write_text(text)
    return read_profiles(path)


def test_each_kind_of_profile_lands_in_its_phase(tmp_path):
    plan = plan_of(
        tmp_path,
        "external_id,device_id,alias_name,alias_label,identify_external_id\n"
        "u1,,,,\n"  # identified
        ",d1,,,\n"  # anonymous
        ",,a@x.com,email,\n"  # alias-only
        "u2,d2,b@x.com,email,\n"  # identified, with a device and an alias
        ",d3,,,u3\n"  # anonymous, later identified
        ",,c@x.com,email,u4\n"  # alias-only, later identified
        "u1,,,,\n",  # a duplicate is tracked once
    )
    assert plan.rows == 7
    assert plan.track == [
        {"external_id": "u1"},
        {"device_id": "d1"},
        {"external_id": "u2"},
        {"device_id": "d2"},
        {"device_id": "d3"},
    ]
    assert plan.aliases == [
        {"alias_name": "a@x.com", "alias_label": "email"},
        {"external_id": "u2", "alias_name": "b@x.com", "alias_label": "email"},
        {"alias_name": "c@x.com", "alias_label": "email"},
    ]
    assert plan.identify == [
        ("devices_to_identify", {"external_id": "u2", "device_id": "d2"}),
        ("devices_to_identify", {"external_id": "u3", "device_id": "d3"}),
        ("aliases_to_identify", {"external_id": "u4", "user_alias": {"alias_name": "c@x.com", "alias_label": "email"}}),
    ]


def test_requests_come_in_three_phases_of_at_most_500_entries(tmp_path):
    rows = "".join(f"u{i},,a{i}@x.com,email,\n" for i in range(1001)) + ",d1,,,u9\n"
    phases = profile_requests(
        plan_of(tmp_path, "external_id,device_id,alias_name,alias_label,identify_external_id\n" + rows)
    )
    assert [[r.entries for r in phase] for phase in phases] == [[500, 500, 2], [500, 500, 1], [1]]
    assert [phase[0].path for phase in phases] == ["users/track", "users/alias/new", "users/identify"]
    assert phases[2][0].body == {
        "aliases_to_identify": [],
        "devices_to_identify": [{"external_id": "u9", "device_id": "d1"}],
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("u1,,,,u2", "line 2, column 'identify_external_id': the row already has an external_id"),
        (",,,,u2", "line 2: no identifier"),
        (",,a@x.com,,", "line 2, column 'alias_label': missing"),
    ],
)
def test_bad_profile_rows_name_line_and_column(tmp_path, row, expected):
    with pytest.raises(InputFileError) as raised:
        plan_of(tmp_path, f"external_id,device_id,alias_name,alias_label,identify_external_id\n{row}\n")
    assert expected in str(raised.value)
