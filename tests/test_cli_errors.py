"""Errors and rough edges a new user meets on the command line (issue 19, section 2).

Each failure must be one line on stderr, no traceback, exit code 1.
"""

import re

from tests.conftest import srbench_cli


def one_line_error(out) -> str:
    """The single stderr line of a failed command, after checking the exit code."""
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def suggestions(line: str) -> list[str]:
    match = re.search(r"did you mean (.*)\?", line)
    assert match, line
    return re.findall(r"'([^']*)'", match.group(1))


def test_suggestions_are_method_names_each_once(isolated_env):
    # "SC" is the label of sc: a name and a label that lowercase alike are one suggestion.
    line = one_line_error(srbench_cli("check", "SCC", env=isolated_env))
    found = suggestions(line)
    assert found[0] == "sc" and len(found) == len(set(found)), line
    line = one_line_error(srbench_cli("check", "bicubik", env=isolated_env))
    assert suggestions(line) == ["bicubic"], line
    # Close only to a label ("A+"): the suggestion is the name -m takes.
    line = one_line_error(srbench_cli("check", "a+x", env=isolated_env))
    assert suggestions(line) == ["aplus"], line
