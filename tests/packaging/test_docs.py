"""The README is a front page whose links lead somewhere; the topic pages link back."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMING = {
    "history.md",
    "gas-water-heat.md",
    "prices.md",
    "tariffs.md",
    "meter-support.md",
    "linky.md",
    "raspberry-pi.md",
}
"""Pages other branches write (the README links them already)."""
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_link_between_the_pages_resolves():
    for page in PAGES:
        for target, anchor in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                assert path.name in COMING, f"{page.name}: {target} does not exist"
                continue
            if anchor:
                assert anchor in _anchors(path), f"{page.name}: {target}#{anchor}"


def test_the_readme_is_a_short_front_page_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 220
    assert "$ scripts/demo.sh" in readme
    assert "$ scripts/test.sh" in readme
    assert "han2mqtt run --config" in readme
    assert '"power_net"' in readme
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, page.name
        assert "(../README.md)" in page.read_text(), page.name
