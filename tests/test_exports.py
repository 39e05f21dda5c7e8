"""CSV exports: read back with the csv module, BOM, formula injection, privacy, the export csv command."""

from __future__ import annotations

import csv
import io
import os
from datetime import date

import pytest

from group_ipt.core import users
from group_ipt.reporting import exports, indicators
from group_ipt.reporting.periods import parse_period
from group_ipt.store.tracking import PRIVATE_FIELDS as SYNC_PRIVATE_FIELDS

from .conftest import add_participant
from .report_data import build


def read(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+256 772", "'+256 772"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Nakato", "Nakato"),
        ("a=b", "a=b"),
        (-4.5, "-4.5"),
        (3, "3"),
        (None, ""),
        (True, "1"),
    ],
)
def test_cells_are_formula_safe_and_numbers_stay_numbers(value, cell):
    assert read(exports.csv_bytes(["v"], [{"v": value}]))[1] == [cell]


def test_csv_round_trip_with_any_script_commas_quotes_and_newlines():
    rows = [{"name": 'Nakato, "Amina"', "note": "line 1\nline 2"}, {"name": "عائشة", "note": "Ñandú"}]
    assert read(exports.csv_bytes(["name", "note"], rows)) == [
        ["name", "note"],
        ['Nakato, "Amina"', "line 1\nline 2"],
        ["عائشة", "Ñandú"],
    ]


def test_privacy_covers_what_sync_keeps_on_the_laptop():
    for table, fields in SYNC_PRIVATE_FIELDS.items():
        for name in fields:
            assert name in exports.PRIVATE_FIELDS.get(table, {}) or name in exports.SECRET_COLUMNS.get(table, ())


def test_table_export_hides_names_phones_guardians_and_notes(db):
    person = add_participant(db, name="=cmd|' /C calc'!A0", phone="0772 123456")
    with db.conn:
        db.execute(
            "insert into consents (id, site_id, participant_id, purpose, given, given_by, created_at,"
            " updated_at) values ('c1', ?, ?, 'group', 1, 'Joseph Okello', 'x', 'x')",
            (person["site_id"], person["id"]),
        )
    site = [person["site_id"]]
    columns, found = exports.table_rows(db, "participants", site, names=False)
    found = list(found)
    assert "name_key" not in columns
    assert (found[0]["name"], found[0]["phone"]) == (person["code"], None)
    consent = list(exports.table_rows(db, "consents", site, names=False)[1])[0]
    assert consent["given_by"] == "guardian"
    shown = list(exports.table_rows(db, "participants", site, names=True)[1])[0]
    assert shown["name"] == "=cmd|' /C calc'!A0"
    out = io.BytesIO()
    exports.write_table(out, db, "participants", site, names=True)
    rows = read(out.getvalue())
    assert rows[1][rows[0].index("name")] == "'=cmd|' /C calc'!A0"
    users_columns, _ = exports.table_rows(db, "users", site, names=True)
    assert "password_hash" not in users_columns


def test_table_export_is_limited_to_the_sites(db):
    add_participant(db, "KMP", "Kampala Person")
    add_participant(db, "MSK", "Masaka Person")
    msk = users.get_site(db, "MSK")["id"]
    found = list(exports.table_rows(db, "participants", [msk], names=True)[1])
    assert [r["name"] for r in found] == ["Masaka Person"]
    assert [r["code"] for r in exports.table_rows(db, "sites", [msk], names=True)[1]] == ["MSK"]
    with pytest.raises(exports.ExportError, match="No table 'audit_log'"):
        exports.table_rows(db, "audit_log", [msk], names=True)


def test_export_folder_writes_every_table_and_indicator(db, protocols, tmp_path):
    build(db, protocols)
    kmp = users.get_site(db, "KMP")["id"]
    report = indicators.Report(
        db, indicators.Filters((kmp,), parse_period("2026-01-01..2026-06-30")), protocols, today=date(2026, 4, 20)
    )
    written = exports.export_folder(db, tmp_path / "out", report, [kmp], names=False, period="H1", sites="KMP")
    names = {p.name for p in written}
    assert {"participants.csv", "attendance.csv", "indicators.csv", "indicator-completion_rate.csv"} <= names
    assert set(os.listdir(tmp_path / "out")) == names  # no staging folder left behind
    figures = {r[0]: r for r in read((tmp_path / "out" / "indicators.csv").read_bytes())}
    header = figures["indicator"]
    assert figures["completers_change_mean"][header.index("value")] == "-10.0"
    assert figures["dropout_rate.2"][header.index("numerator")] == "1"
    completion = read((tmp_path / "out" / "indicator-members_ended.csv").read_bytes())
    assert "name" not in completion[0] and len(completion) == 7
    participants = read((tmp_path / "out" / "participants.csv").read_bytes())
    assert not any("Test" in cell for row in participants for cell in row)  # names replaced by codes


def test_export_folder_writes_nothing_when_a_file_fails(db, tmp_path):
    def broken(out):
        raise OSError(28, "No space left on device")

    with pytest.raises(exports.ExportError, match="No space left"):
        exports.write_folder(tmp_path / "out", {"a.csv": lambda out: out.write(b"a"), "b.csv": broken})
    assert os.listdir(tmp_path / "out") == []


def test_export_csv_command(runner, tmp_path):
    assert runner.invoke(["init", "--admin", "boss"], input="password1\npassword1\n").exit_code == 0
    assert runner.invoke(["sites", "add", "KMP", "Kampala"]).exit_code == 0
    result = runner.invoke(["export", "csv", str(tmp_path / "csv"), "--period", "2026Q4"])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and (tmp_path / "csv" / "indicators.csv").exists()
    bad = runner.invoke(["export", "csv", str(tmp_path / "csv2"), "--period", "2026Q9"])
    assert bad.exit_code == 1 and "Unknown period 2026Q9" in bad.output
    assert not (tmp_path / "csv2").exists()
    unknown = runner.invoke(["export", "csv", str(tmp_path / "csv3"), "--site", "XYZ"])
    assert unknown.exit_code == 1 and "Unknown site 'XYZ'" in unknown.output
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    unwritable = runner.invoke(["export", "csv", str(blocker / "sub")])
    assert unwritable.exit_code == 1 and "Cannot write to" in unwritable.output
