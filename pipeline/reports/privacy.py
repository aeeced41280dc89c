"""The one place where text read from the store is prepared for leaving it in a report.

Every free text a report shows or writes (transcripts, finding evidence, event notes, abuse
examples) goes through `for_output` when it is loaded in `pipeline/reports/monthly.py`; HTML,
CSV and XLSX only ever see its result. Redaction of personal data (phone and ID numbers, …) is a
later issue: it replaces the body of this function, nothing else.
"""

from __future__ import annotations


def for_output(text: str | None) -> str | None:
    return text
