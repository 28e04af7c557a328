"""Fleet settings: the `--site` label on every series, and the ledger that shares one
customer's daily budget (`--ledger URL --customer-budget N`) across every site's monitor."""

from __future__ import annotations

import re

from assure_doctor import urls
from assure_doctor.errors import InputError

FILE_SETTINGS = {"site", "ledger", "customer_budget"}  # the same settings in the TOML file
MAX_LENGTH = 64
MAX_CUSTOMER_BUDGET = 10_000  # the customer's daily quota (the guide)
# Letters, digits and a few separators: safe in a label value, a PromQL string, a shell
# command and a terminal, and readable in an alert ("site london-office cannot reach it").
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*")


def site(value: object, where: str = "--site") -> str:
    """The site name, or InputError naming `where` (the value is shown escaped, bounded)."""
    if not isinstance(value, str):
        raise InputError(f"{where}: must be a string")
    if not value or len(value) > MAX_LENGTH or not _SITE.fullmatch(value):
        raise InputError(f"{where}: give 1 to {MAX_LENGTH} letters, "
                         "digits or . _ : @ / - (starting with a letter or digit)")
    return value


def validate_settings(site_name: object, url: object, budget: object) -> None:
    """Every fleet setting, or InputError naming the first bad one."""
    if site_name is not None:
        site(site_name)
    ledger(url, budget)


def ledger(url: object, budget: object) -> tuple[str, int] | None:
    """(url, budget) from --ledger and --customer-budget (both or neither); InputError else."""
    if url is None and budget is None:
        return None
    if url is None or budget is None:
        raise InputError("--ledger and --customer-budget go together: give both or neither")
    if not isinstance(url, str):
        raise InputError("--ledger: must be a string")
    parts = urls.split(url, "--ledger")  # a password in it is registered as a secret first
    if parts.scheme not in ("http", "https") or parts.port == 0:
        raise InputError("--ledger: give the Prometheus URL, e.g. http://prometheus:9090")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and process lists.
        raise InputError("--ledger: credentials in the URL are not supported")
    if parts.query is not None or parts.fragment is not None:
        raise InputError("--ledger: give the Prometheus base URL, without ?query or #fragment")
    if isinstance(budget, bool) or not isinstance(budget, int) or not (
            0 <= budget <= MAX_CUSTOMER_BUDGET):
        raise InputError(f"--customer-budget: give a whole number from 0 to "
                         f"{MAX_CUSTOMER_BUDGET}")
    return url.rstrip("/"), budget
