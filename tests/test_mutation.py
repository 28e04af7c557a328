"""The mutation runner (bench/mutation.py) stays honest: the tests kill a known wrong answer."""

from __future__ import annotations

from bench.mutation import ROOT, Workspace, mutants_of

NETCLASS = "assure_doctor/probes/netclass.py"
TESTS = ["tests/test_netclass.py"]


def test_a_known_mutant_is_killed_and_the_worktree_is_untouched() -> None:
    original = (ROOT / NETCLASS).read_text()
    # connect_condition with its comparison flipped: every timeout reported as a refusal.
    [mutant] = [m for m in mutants_of(NETCLASS)
                if m.description == "kind == 'timeout': Eq -> NotEq"]
    assert "kind != 'timeout'" in mutant.source
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
    for expected in ("swap 'config' and 'dns_service'", "delete entry 'kind': 'nxdomain'",
                     "'nxdomain' -> 'nxdomainX'", "placeholder {host} -> {hostX}",
                     "Eq -> NotEq", "all() -> any()", "delete the branch `if ",
                     "10061 -> 10062", "-> And", "always the else branch"):
        assert any(expected in text for text in descriptions), expected
