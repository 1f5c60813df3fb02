"""MyST Markdown -> the Markdown that Jupyter and Colab render, for the downloaded notebooks.

The book's pages are MyST: roles (``{glue:text}``, ``{doc}``, ``{cite:p}``, ``{prf:ref}``, ``{eq}``) and
directives (``prf:theorem``, ``prf:proof``, ``exercise``, admonitions, ``dropdown``) that Jupyter shows as raw
text. :func:`convert_markdown` writes them as plain Markdown: glued values are written in, references become
text or links into the published book, and directives become bold labels (block quotes for admonitions). The
numbers, titles and glued values come from a :class:`References`, which :mod:`.notebooks` fills from the Sphinx
environment of the build; without one (``References()``), roles fall back to their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

#: prf:<type> and the word a reader sees.
PROOF_WORDS = {
    "axiom": "Axiom",
    "theorem": "Theorem",
    "lemma": "Lemma",
    "algorithm": "Algorithm",
    "definition": "Definition",
    "remark": "Remark",
    "conjecture": "Conjecture",
    "corollary": "Corollary",
    "criterion": "Criterion",
    "example": "Example",
    "property": "Property",
    "observation": "Observation",
    "proposition": "Proposition",
    "assumption": "Assumption",
    "notation": "Notation",
}
ADMONITIONS = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
DROPPED_DIRECTIVES = {"toctree", "tableofcontents", "solution-start", "solution-end", "solution", "bibliography"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<argument>.*)$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$")
_MATH_LABEL = re.compile(r"\$\$[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$")
#: A code span (kept as it is) or a role ``{name}`content```; the leftmost wins, so roles inside code spans stay.
_INLINE = re.compile(
    r"(?P<code>(?<![\\`])(?P<cticks>`+)(?!`).*?(?<!`)(?P=cticks)(?!`))"
    r"|\{(?P<role>[a-z][\w:.+-]*)\}(?P<ticks>`+)(?P<content>.+?)(?P=ticks)",
    re.S,
)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


@dataclass
class References:
    """What a role or directive needs from the build, all optional.

    ``site`` is the published book's address (ending in ``/``), ``docname`` the page being converted
    (``book/gumbel_max``). ``titles``: docname -> title. ``numbers``: label -> (docname, kind, number), kind
    being a ``prf`` type, ``exercise`` or ``equation``. ``sections``: label -> (docname, anchor, title).
    ``citations``: key -> (authors, year). ``glue``: docname -> {key: mime bundle}.
    """

    site: str = ""
    docname: str = ""
    titles: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    sections: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)
    glue: dict[str, dict[str, dict]] = field(default_factory=dict)

    def url(self, docname: str, anchor: str = "") -> str:
        """The published address of ``docname`` (and ``#anchor``); a relative one when ``site`` is unknown."""
        page = f"{self.site}{docname}.html" if self.site else f"{PurePosixPath(docname).name}.html"
        return f"{page}#{anchor}" if anchor else page

    def resolve_doc(self, target: str) -> str:
        """A ``{doc}`` target, relative to the current page or absolute (``/book/x``), as a docname."""
        target = target.removesuffix(".md").removesuffix(".ipynb")
        if target.startswith("/"):
            return target.lstrip("/")
        parts: list[str] = list(PurePosixPath(self.docname).parent.parts)
        for part in PurePosixPath(target).parts:
            if part == "..":
                parts = parts[:-1]
            elif part != ".":
                parts.append(part)
        return "/".join(parts)

    def label(self, target: str) -> tuple[str, str] | None:
        """``(words, url)`` for a numbered label: ``("Theorem 3", ...)``, ``("Exercise 8", ...)``."""
        if target not in self.numbers:
            return None
        docname, kind, number = self.numbers[target]
        word = PROOF_WORDS.get(kind) or kind.capitalize()
        return f"{word} {number}", self.url(docname, target)


# ----------------------------------------------------------------------------------------------- roles


def _glue_value(refs: References, content: str) -> str:
    """``key``, ``key:format`` or ``doc::key[:format]`` as the glued text/plain value, formatted as the book does."""
    from myst_nb.core.variables import format_plain_text

    docname = refs.docname
    if "::" in content:
        doc, content = content.split("::", 1)
        docname = refs.resolve_doc(doc)
    key, _, spec = content.partition(":")
    bundle = refs.glue.get(docname, {}).get(key)
    if bundle is None:
        return f"`{key}`"
    data = bundle.get("data", bundle)
    if "text/markdown" in data and not spec:
        return str(data["text/markdown"]).strip()
    text = str(data.get("text/plain", ""))
    return format_plain_text(text, spec or "")


def _cite(refs: References, role: str, content: str) -> str:
    keys = [k.strip() for k in content.split(",") if k.strip()]
    found = [refs.citations.get(k, (k, "")) for k in keys]
    kind = role.split(":", 1)[1] if ":" in role else "p"
    if kind.startswith("t") or kind == "author":
        return "; ".join(f"{a} ({y})" if y and kind != "author" else a for a, y in found)
    if kind == "year":
        return "; ".join(y or a for a, y in found)
    body = "; ".join(f"{a}, {y}" if y else a for a, y in found)
    return f"({body})" if kind.startswith("p") else body


def _reference(refs: References, role: str, content: str) -> str:
    explicit = _EXPLICIT.match(content)
    text, target = (explicit["text"], explicit["target"]) if explicit else ("", content)
    if role == "doc":
        docname = refs.resolve_doc(target)
        return f"[{text or refs.titles.get(docname, PurePosixPath(docname).name)}]({refs.url(docname)})"
    if role == "eq":
        number = refs.numbers.get(target)
        return f"({number[2]})" if number else f"({target})"
    if role in ("ref", "numref") and target in refs.sections:
        docname, anchor, title = refs.sections[target]
        return f"[{text or title}]({refs.url(docname, anchor)})"
    numbered = refs.label(target)
    if numbered:
        words, url = numbered
        return f"[{text.replace('%s', words.split()[-1]) if text else words}]({url})"
    return text or target


def convert_role(refs: References, role: str, content: str) -> str:
    """One role as Markdown text."""
    if role.startswith("glue"):
        return _glue_value(refs, content)
    if role.startswith("cite"):
        return _cite(refs, role, content)
    if role in ("doc", "ref", "numref", "eq", "prf:ref", "any") or role.endswith(":ref"):
        return _reference(refs, role, content)
    if role == "math":
        return f"${content}$"
    if role in ("sub", "sup"):
        return f"<{role}>{content}</{role}>"
    if role in ("code", "samp", "file", "kbd", "command", "program", "envvar", "py:func", "py:class", "func"):
        return f"`{content}`"
    explicit = _EXPLICIT.match(content)
    return explicit["text"] if explicit and explicit["text"] else content


def convert_inline(refs: References, text: str) -> str:
    """Text with every role replaced; code spans are left alone."""

    def replace(m: re.Match) -> str:
        return m.group(0) if m.group("code") else convert_role(refs, m.group("role"), m.group("content"))

    return _INLINE.sub(replace, text)


def _convert_text(refs: References, text: str) -> str:
    """A stretch of Markdown outside any fence: targets dropped, labelled equations tagged, roles replaced."""
    lines = [line for line in text.split("\n") if not _TARGET.match(line)]

    def tag(m: re.Match) -> str:
        number = refs.numbers.get(m["label"])
        return f"\\tag{{{number[2]}}}$$" if number else "$$"

    return convert_inline(refs, _MATH_LABEL.sub(tag, "\n".join(lines)))


# ------------------------------------------------------------------------------------------ directives


@dataclass
class Directive:
    name: str
    argument: str
    options: dict[str, str]
    body: str
    original: str = ""


def split_blocks(markdown: str) -> list[str | Directive]:
    """Top-level pieces of ``markdown``: plain text (code fences included, verbatim) and directives."""
    lines, pieces, text, i = markdown.split("\n"), [], [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            text.append(lines[i])
            i += 1
            continue
        fence = opening["fence"]
        j = i + 1
        while j < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            j += 1
        directive = _DIRECTIVE_INFO.match(opening["info"].strip())
        if not directive or fence[0] == "~":
            text.extend(lines[i : j + 1])  # a plain code fence: kept verbatim
            i = j + 1
            continue
        if text:
            pieces.append("\n".join(text))
            text = []
        parsed = _directive(directive["name"], directive["argument"].strip(), lines[i + 1 : j])
        parsed.original = "\n".join(lines[i : j + 1])
        pieces.append(parsed)
        i = j + 1
    if text:
        pieces.append("\n".join(text))
    return pieces


def _directive(name: str, argument: str, body: list[str]) -> Directive:
    options: dict[str, str] = {}
    if body and body[0].strip() == "---":  # YAML options block
        end = next((k for k in range(1, len(body)) if body[k].strip() == "---"), 0)
        for line in body[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        body = body[end + 1 :]
    else:
        while body and _OPTION.match(body[0]):
            m = _OPTION.match(body[0])
            options[m["key"]] = m["value"].strip()
            body = body[1:]
    return Directive(name, argument, options, "\n".join(body).strip("\n"))


def _labelled(head: str, body: str) -> str:
    """``**head**`` running into the body's first paragraph when that is plain text, else on its own line."""
    first = body.lstrip("\n").split("\n", 1)[0]
    if body.strip() and not re.match(r"^\s*(\$\$|[-*+] |\d+\. |#|>|\||```|~~~|<)", first):
        return f"**{head}** {body.lstrip()}"
    return f"**{head}**\n\n{body}".rstrip()


def convert_directive(refs: References, d: Directive) -> str:
    """One directive as Markdown."""
    body = convert_markdown(d.body, refs)
    title = convert_inline(refs, d.argument)
    if d.name in DROPPED_DIRECTIVES:
        return ""
    if d.name.startswith("prf:") and d.name[4:] in PROOF_WORDS or d.name == "exercise":
        kind = d.name[4:] if d.name.startswith("prf:") else "exercise"
        label = d.options.get("label", "")
        number = refs.numbers.get(label)
        word = PROOF_WORDS.get(kind, "Exercise")
        head = f"{word} {number[2]}" if number else word
        return _labelled(f"{head} ({title})." if title else f"{head}.", body)
    if d.name == "prf:proof":
        ending = "\n\n∎" if re.search(r"(\$\$|```|\|)\s*$", body) or not body.strip() else " ∎"
        return _labelled("Proof.", body) + ending
    if d.name in ADMONITIONS or d.name in ("admonition", "dropdown"):
        word = title if d.name in ("admonition", "dropdown") else ADMONITIONS[d.name]
        if d.name in ADMONITIONS and title:
            word = f"{word}: {title}"
        return _quoted(_labelled(f"{word}." if word else "", body) if word else body)
    if d.name in ("math", "glue:math"):
        label = refs.numbers.get(d.options.get("label", ""))
        tag = f" \\tag{{{label[2]}}}" if label else ""
        return f"$$\n{d.body.strip()}{tag}\n$$"
    if d.name in ("code-block", "code", "sourcecode", "code-cell"):
        return f"```{d.argument}\n{d.body}\n```"
    if d.name in ("glue", "glue:any", "glue:md", "glue:figure") and d.argument:
        return _glue_value(refs, d.argument)
    if d.name in ("figure", "image") and d.argument:
        return f"![{d.options.get('alt', title)}]({d.argument})" + (f"\n\n{body}" if body.strip() else "")
    return _labelled(f"{title}." if title else f"{d.name.split(':')[-1].capitalize()}.", body)


def _quoted(text: str) -> str:
    """A block quote, unless it holds display math or a code fence (their lines must not carry ``>``)."""
    if "$$" in text or "```" in text or "\\begin{" in text:
        return text
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.split("\n"))


def convert_markdown(markdown: str, refs: References | None = None) -> str:
    """MyST ``markdown`` as Markdown that Jupyter and Colab render."""
    refs = refs or References()
    out = []
    for piece in split_blocks(markdown):
        if isinstance(piece, Directive):
            out.append(convert_directive(refs, piece))
        else:
            out.append(_convert_plain(refs, piece))
    text = "\n\n".join(p.strip("\n") for p in out if p.strip())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _convert_plain(refs: References, text: str) -> str:
    """Plain text with its code fences kept verbatim."""
    out, buffer, lines, i = [], [], text.split("\n"), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            buffer.append(lines[i])
            i += 1
            continue
        fence = opening["fence"]
        j = i + 1
        while j < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            j += 1
        out.append(_convert_text(refs, "\n".join(buffer)))
        out.append("\n".join(lines[i : j + 1]))
        buffer, i = [], j + 1
    out.append(_convert_text(refs, "\n".join(buffer)))
    return "\n".join(out)
