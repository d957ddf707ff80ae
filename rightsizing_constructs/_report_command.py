"""What ``python -m rightsizing_constructs report`` does once ``cli.py`` has parsed it.

Apart from ``cli.py`` so the command line loads matplotlib only when it draws, and so the
renderers (``report.py``, ``fleet_report.py``) never import the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import fleet_report, report


class CannotReport(Exception):
    """Input the report cannot be drawn from, or no matplotlib; one line for the user."""


def run(
    arguments: argparse.Namespace, given: list[str], decide: Callable[[], dict[str, Any]]
) -> str | None:
    """Render the page (``decide`` makes the decision, as ``plan``); None when written."""
    source = "--detail" if arguments.detail is not None else "--ledger"
    if arguments.job_description is None and given:
        raise CannotReport(
            f"{source} takes no settings (it holds the decisions): {', '.join(given)}"
        )
    try:
        if arguments.ledger is not None:
            items = fleet_report.load_items(arguments.ledger)
            page = fleet_report.render(items)
            if arguments.png is not None:
                fleet_report.write_png(items, arguments.png)
        else:
            detail = decide() if arguments.detail is None else report.load_detail(arguments.detail)
            page = report.render(detail)
            if arguments.png is not None:
                report.write_png(detail, arguments.png)
        if arguments.output is None:
            return page
        arguments.output.write_text(page, encoding="utf-8")
    except (report.InvalidDetail, report.ReportUnavailable) as error:
        raise CannotReport(str(error)) from None
    except OSError as error:
        raise CannotReport(f"cannot write the report: {error}") from None
    return None
