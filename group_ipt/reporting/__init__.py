"""Reporting: indicators and the records they count, the stored figures, periods, CSV and
DHIS2 exports, charts. No Flask.

Imports only core and the layers below it."""
