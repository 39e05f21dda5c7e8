"""Attendance marks of a session with their status, read without the table's rows.

The facilitator's home, cycle and session pages and the report refresh read the marks
of a cycle's held sessions (``followup.MEMBER_RECORDS_SQL``): through the unique
(session, member) key each mark's status needed a read of its row, scattered over the
1.4 million rows of a national programme (5 ms for a facilitator's 9 open cycles).
This index holds the status too (2.5 ms).
"""

SQL = """
create index attendance_by_session on attendance(session_id, member_id, status);
"""
