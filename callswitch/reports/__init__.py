"""Reporting: analyst views (migration 0010), ``callswitch report``, the HTML report, and retention.

* :mod:`callswitch.reports.data` - run a report (``fetch_report``) as rows of plain Python values.
* :mod:`callswitch.reports.formatting` - rows as an aligned table, CSV or JSON.
* :mod:`callswitch.reports.html` - ``render_html(conn, since, until, site)``: a self-contained HTML page.
* :mod:`callswitch.reports.retention` - ``purge(conn, older_than_days)``: anonymise old requests.
* :mod:`callswitch.reports.cli` - ``register(subparsers)``: the ``report`` and ``purge`` commands.
"""

from __future__ import annotations

from callswitch.reports.data import REPORTS, ReportQuery, fetch_report
from callswitch.reports.html import render_html
from callswitch.reports.retention import purge

__all__ = ["REPORTS", "ReportQuery", "fetch_report", "purge", "render_html"]
