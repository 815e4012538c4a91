"""The gradebook: where it is, and every read and write of it by the grading tooling.

nbgrader's ``db_url``: SQLite ``gradebook.db`` in the course root by default, or the URL in the
environment variable ``PA2_DB_URL`` (``make ... DB=postgresql://...`` sets it), which
``nbgrader_config.py`` passes to formgrader and nbgrader's own commands as well.
"""
import os

from . import ROOT

DB_URL_VARIABLE = "PA2_DB_URL"


def db_url(root=ROOT):
    """The gradebook URL of the course at ``root``: ``$PA2_DB_URL`` or ``sqlite:///<root>/gradebook.db``."""
    return os.environ.get(DB_URL_VARIABLE) or f"sqlite:///{root / 'gradebook.db'}"
