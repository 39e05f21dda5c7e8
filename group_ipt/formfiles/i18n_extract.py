"""Babel extractor for the YAML form files (instruments, protocols, scripts).

Registered in babel.cfg::

    [extractors]
    yaml = group_ipt.formfiles.i18n_extract:extract_yaml
    [yaml: forms/**.yaml]

Every text value under a translatable key (see TRANSLATABLE_KEYS), anywhere in
a document, becomes a message. Each message carries a translator comment built
from where it sits in the file, e.g. ``I18N: phq9 item q9 text`` or
``I18N: phq9 item q10 option 2 label``, so a translator knows which question or
answer a short string such as "Often" belongs to.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

import yaml

from .yamlfile import SafeLoader

TRANSLATABLE_KEYS = frozenset(
    {
        "text",
        "label",
        "title",
        "name",
        "description",
        "explanation",
        "goals",
        "steps",
        "recall",
        "say",
        "ask",
        "watch",
        "activity",
        "homework",
        "reminder",
        "summary",
    }
)
# Keys whose value names a list entry in the comment ("item q9", "option 2").
_IDENTIFYING_KEYS = ("id", "code", "value", "number")
_STR_TAG = "tag:yaml.org,2002:str"

Message = tuple[int, None, str, list[str]]


def extract_yaml(
    fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str], options: Mapping[str, Any]
) -> Iterator[Message]:
    """Yield ``(lineno, None, message, [comment])`` for every translatable string.

    ``keywords`` and ``comment_tags`` are part of Babel's extractor interface and
    do not apply to data files. ``options`` may give an ``encoding`` (UTF-8 by
    default). A file that is not valid YAML raises yaml.YAMLError, naming the
    line, so a broken form file stops the extraction instead of vanishing from
    the catalog.
    """
    encoding = options.get("encoding", "utf-8")
    text = fileobj.read().decode(encoding)
    for document in yaml.compose_all(text, Loader=SafeLoader):
        if document is not None:
            yield from _walk(document, [])


def _walk(node: yaml.Node, path: list[str]) -> Iterator[Message]:
    if isinstance(node, yaml.MappingNode):
        here = path
        identity = _identity(node)
        if identity is not None and not path:
            here = [identity]  # the document's own id opens every comment
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                continue
            if key in TRANSLATABLE_KEYS:
                yield from _messages(value_node, [*here, key])
            yield from _walk_child(value_node, here, key)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value, start=1):
            yield from _walk(child, [*path, str(index)])


def _walk_child(node: yaml.Node, path: list[str], key: str) -> Iterator[Message]:
    """Walk the value of ``key``, naming list entries by their id where they have one."""
    if isinstance(node, yaml.SequenceNode):
        singular = key[:-1] if key.endswith("s") and len(key) > 1 else key
        for index, child in enumerate(node.value, start=1):
            identity = _identity(child) if isinstance(child, yaml.MappingNode) else None
            entry = f"{singular} {identity if identity is not None else index}"
            if isinstance(child, (yaml.MappingNode, yaml.SequenceNode)):
                yield from _walk(child, [*path, entry])
    elif isinstance(node, yaml.MappingNode):
        yield from _walk(node, [*path, key])


def _identity(node: yaml.MappingNode) -> str | None:
    found = {}
    for key_node, value_node in node.value:
        if (
            isinstance(key_node, yaml.ScalarNode)
            and key_node.value in _IDENTIFYING_KEYS
            and isinstance(value_node, yaml.ScalarNode)
            and value_node.value != ""
        ):
            found[key_node.value] = value_node.value
    for key in _IDENTIFYING_KEYS:
        if key in found:
            return str(found[key])
    return None


def _messages(node: yaml.Node, path: list[str]) -> Iterator[Message]:
    if _is_text(node):
        yield node.start_mark.line + 1, None, node.value, [_comment(path)]
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value, start=1):
            if _is_text(child):
                comment = _comment([*path, str(index)])
                yield child.start_mark.line + 1, None, child.value, [comment]


def _is_text(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and bool(node.value.strip())


def _comment(path: list[str]) -> str:
    return "I18N: " + " ".join(path)
