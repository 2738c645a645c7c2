"""Every citation of the project's docs in code, scripts and the README points at a document
and a numbered section that exist, so comments keep explaining after docs change."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITING = ["procsupervisor", "workers", "cache", "scripts"]
CITATION = re.compile(
    r"(docs/[\w/.-]+\.md)"
    r"((?:\s*(?:§|sections?)?\s*\d+(?:\.\d+)*(?:\s*[-–]\s*\d+(?:\.\d+)*)?\s*,?)*)"
)
NUMBER = re.compile(r"\d+(?:\.\d+)*")
HEADING = re.compile(r"^#+\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def _citing_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in CITING:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".sh", ".ini"}]
    return files


def _citations() -> list[tuple[Path, str, list[str]]]:
    found = []
    for path in _citing_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            found.append((path, match.group(1), NUMBER.findall(match.group(2))))
    return found


def test_code_cites_the_projects_docs() -> None:
    assert len(_citations()) > 50


def test_every_cited_document_and_section_exists() -> None:
    broken = []
    for path, document, sections in _citations():
        target = ROOT / document
        if not target.is_file():
            broken.append(f"{path.relative_to(ROOT)}: {document} does not exist")
            continue
        headings = set(HEADING.findall(target.read_text(encoding="utf-8")))
        for section in sections:
            if section not in headings:
                broken.append(f"{path.relative_to(ROOT)}: {document} has no section {section}")
    assert broken == []


def test_nothing_cites_documents_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared/\w+\.md|\b(?:DESIGN|SOCORRO|MINIDUMP|BREAKPAD)\.md\b")
    offenders = [
        str(path.relative_to(ROOT))
        for path in _citing_files()
        if outside.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
