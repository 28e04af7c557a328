"""The mutation runner (bench/mutation.py) stays honest: the tests kill a known wrong answer."""

from __future__ import annotations

import re

import pytest

from assure_doctor.kinds import CauseId, Condition
from bench import equivalents, mutation
from bench.mutation import ROOT, Mutant, Workspace, mutants_of

pytestmark = pytest.mark.slow  # the mutation runner: every mutant of three modules, and test runs

NETCLASS = "assure_doctor/probes/netclass.py"
TESTS = ["tests/test_netclass.py"]


def test_a_known_mutant_is_killed_and_the_worktree_is_untouched() -> None:
    original = (ROOT / NETCLASS).read_text()
    # connect_condition with its comparison flipped: every timeout reported as a refusal.
    [mutant] = [m for m in mutants_of(NETCLASS)
                if m.description == "kind == ConnectKind.TIMEOUT: Eq -> NotEq"]
    assert "kind != ConnectKind.TIMEOUT" in mutant.source
    space = Workspace(TESTS)
    try:
        assert space.imports_its_copy()
        assert space.passes(TESTS)  # without the mutant the same tests pass
        assert not space.passes(TESTS, mutant)
        assert space.passes(TESTS)  # and the copy is restored after it
    finally:
        space.close()
    assert (ROOT / NETCLASS).read_text() == original
    assert not space.dir.exists()


def test_mutants_cover_every_operator() -> None:
    descriptions = [m.description for m in mutants_of("assure_doctor/causes.py")]
    descriptions += [m.description for m in mutants_of(NETCLASS)]
    descriptions += [m.description for m in mutants_of("assure_doctor/ranking.py")]
    for expected in ("swap K.CONFIG and K.DNS_SERVICE", "delete entry 'kind': DnsKind.NXDOMAIN",
                     "DnsKind.NXDOMAIN -> DnsKind.SERVFAIL", "K.CONFIG -> K.DNS_SERVICE",
                     "ConnectKind.TIMEOUT -> ConnectKind.REFUSED", "delete _a(",
                     "delete *_FAMILY_RULES", "drop kind=DnsKind.NXDOMAIN from _a()",
                     "fact clock_explains= -> clock_explainsX= in _a()", "False -> True",
                     "'other' -> 'otherX'", "placeholder {host} -> {hostX}",
                     "Eq -> NotEq", "all() -> any()", "delete the branch `if ",
                     "10061 -> 10062", "-> And", "always the else branch"):
        assert any(expected in text for text in descriptions), expected


def test_an_enum_member_is_replaced_by_the_next_of_its_own_enum() -> None:
    """Through the module's aliases (C, K = Condition, CauseId), and only with real members."""
    descriptions = {m.description for m in mutants_of("assure_doctor/causes.py")}
    assert "K.TOOL -> K.CONFIG" in descriptions  # the last member wraps to the first
    assert "C.INTERNAL_ERROR -> C.DNS_LOOKUP_FAILED" in descriptions
    members = {"K": set(CauseId.__members__), "C": set(Condition.__members__)}
    for text in descriptions:
        if match := re.fullmatch(r"(C|K)\.(\w+) -> (C|K)\.(\w+)", text):
            alias, before, same, after = match.groups()
            assert alias == same and {before, after} <= members[alias], text


def test_decorators_are_not_mutated_and_keyword_constants_are_named() -> None:
    descriptions = {m.description for m in mutants_of("assure_doctor/probes/dns.py")}
    assert not any("frozen" in text or "maxsize" in text for text in descriptions)
    assert "search=False -> True" in descriptions
    assert "raise_on_no_answer=False -> True" in descriptions


def test_a_count_in_a_regular_expression_is_no_placeholder() -> None:
    descriptions = {m.description for m in mutants_of("assure_doctor/monitor/budget.py")}
    assert not any(text.startswith("placeholder {4}") for text in descriptions)


def test_named_mutants_are_listed_apart_and_the_rates_say_how_they_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = "assure_doctor/x.py"
    same = Mutant(path, 3, "1 -> 2", "", "LIMIT = 1")
    far = Mutant(path, 4, "Is -> IsNot", "", "if route is None:")
    alive = Mutant(path, 5, "Eq -> NotEq", "", "if a == b:")
    dead = Mutant(path, 6, "delete the branch `if c:` (line 6)", "", "if c:")
    stale = Mutant(path, 7, "True -> False", "", "FLAG = True")
    others = [Mutant(path, 8 + n, f"{n} -> {n + 1}", "", f"N = {n}") for n in range(5)]
    monkeypatch.setitem(equivalents.EQUIVALENT, path, {
        same.key: "one more changes nothing", stale.key: "claimed, but the tests kill it",
        ("gone", "no such line"): "a mutant that no longer exists"})
    monkeypatch.setitem(equivalents.UNREACHED, path, {far.key: "needs a route loopback lacks"})
    assert dead.key == ("delete the branch `if c:`", "if c:")  # no line number in the key
    text = mutation.report([path], [(same, False), (far, False), (alive, False), (dead, True),
                                    (stale, True), *((m, True) for m in others)])
    # 10 mutants, 1 equivalent: 9 counted; 2 of them alive (strict), 1 of 8 in reach
    assert (f"{path:36}:   10 mutants,    7 killed,   1 survived,  1 unreached,   1 "
            "equivalent (22.2%, 12.5% in reach)") in text
    assert f"  survived    {alive}  [if a == b:]" in text
    assert f"  unreached   {far}: needs a route loopback lacks" in text
    assert f"  equivalent  {same}: one more changes nothing" in text
    assert f"stale: named, but the tests kill it: {stale}" in text
    assert "stale: named, but no such mutant: assure_doctor/x.py ('gone'" in text
    assert text.endswith("survival rate: 22.2%, 12.5% in reach of 9 mutants not equivalent "
                         "(aim: under 10%)")


def test_the_same_change_written_twice_on_a_line_is_numbered() -> None:
    keys = [m.key for m in mutants_of("assure_doctor/probes/ping.py")
            if m.where == "for number in range(1, ctx.options.attempts + 1):"]
    assert ("1 -> 2", "for number in range(1, ctx.options.attempts + 1):") in keys
    assert ("1 -> 2 (#2)", "for number in range(1, ctx.options.attempts + 1):") in keys
    assert len(keys) == len(set(keys))


def test_every_named_mutant_exists() -> None:
    for table in (equivalents.EQUIVALENT, equivalents.UNREACHED):
        for path, named in table.items():
            keys = {m.key for m in mutants_of(path)}
            assert set(named) <= keys, (path, set(named) - keys)
