"""The README documents every CLI command and every setting."""

from __future__ import annotations

import click
import pytest

from group_ipt.base.settings import REPO_DIR, SETTINGS
from group_ipt.cli import cli

README = (REPO_DIR / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "group-ipt") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("path", command_paths(cli))
def test_every_command_is_in_readme(path):
    assert f"`{path}" in README, f"README does not document {path}"


@pytest.mark.parametrize("name", [s.name for s in SETTINGS])
def test_every_setting_is_in_readme(name):
    assert f"`{name}`" in README


def test_every_command_has_help_and_example():
    def walk(group):
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from walk(command)

    for command in walk(cli):
        assert command.help and "Example:" in command.help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.name} has no help"


def test_readme_starts_with_run_and_test_commands():
    ci = (REPO_DIR / ".ci" / "run").read_text(encoding="utf-8")
    blocks = README.split("```")
    run_cmd, test_cmd = blocks[1].strip().splitlines()[-1], blocks[3].strip().splitlines()[-1]
    assert "serve --demo" in run_cmd
    assert test_cmd in ci
