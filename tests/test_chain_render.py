"""The presented chain in the human report: one line per certificate, leaf first, each with
its problem, then the trust anchor it ends at; everything the server chose escaped and cut."""

from __future__ import annotations

from assure_doctor.model import Cause, Report, StageResult, Status
from assure_doctor.render import human
from assure_doctor.target import from_url

TARGET = from_url("https://api.sandbox.sheassure.net/v1/ping")


def link(subject: str, problem: str | None, start: str = "2026-01-01",
         end: str = "2027-01-01") -> dict[str, object]:
    return {"subject": subject, "issuer": "CN=x", "not_before": f"{start}T00:00:00+00:00",
            "not_after": f"{end}T00:00:00+00:00", "sha256": "ab" * 32, "problem": problem}


def render(evidence: dict[str, object]) -> list[str]:
    tls = StageResult("tls", Status.FAIL, 5.0, "the intermediate certificate has expired",
                      "tls_certificate_error", (Cause("platform", "Platform", "Tell them."),),
                      evidence)
    text = human.render(Report(TARGET, (tls,), "2026-01-01T00:00:00+00:00", "system"))
    return text.splitlines()


def test_one_line_per_certificate_with_its_problem() -> None:
    lines = render({"chain": [link("CN=api.sandbox.sheassure.net", None),
                              link("CN=Issuing CA 0", "expired", "2025-01-01", "2026-02-01")],
                    "anchor": link("CN=Root", None, "2016-01-01", "2036-01-01")})
    start = lines.index("    chain, leaf first:")
    assert lines[start + 1:start + 4] == [
        "      1. CN=api.sandbox.sheassure.net, valid 2026-01-01 to 2027-01-01: ok",
        "      2. CN=Issuing CA 0, valid 2025-01-01 to 2026-02-01: EXPIRED",
        "      root, trusted here (not sent): CN=Root, valid 2016-01-01 to 2036-01-01: ok"]
    assert not any(line.startswith("    anchor") for line in lines)


def test_problems_read_as_words() -> None:
    lines = "\n".join(render({"chain": [link("CN=a", "missing_issuer"),
                                        link("CN=b", "not_yet_valid"),
                                        link("CN=c", "hostname_mismatch"),
                                        link("CN=d", "something_new")]}))
    for word in ("ISSUER NOT SENT", "NOT YET VALID", "WRONG NAME", "SOMETHING_NEW"):
        assert word in lines


def test_what_the_server_chose_is_escaped_and_cut() -> None:
    hostile = "CN=\x1b]0;owned\x07" + "A" * 500
    lines = render({"chain": [link(hostile, "untrusted\x1b[2J")]})
    row = next(line for line in lines if line.startswith("      1. "))
    assert "\x1b" not in row and "\x07" not in row and "…" in row
    assert len(row) < 200


def test_a_chain_that_is_not_a_list_is_shown_as_a_value() -> None:
    lines = render({"chain": "odd"})
    assert "    chain: odd" in lines
