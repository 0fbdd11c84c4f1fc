"""The page around the sections: headings and the table of contents, embedded images, the HTML document."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from lavimo import __version__
from lavimo.report.common import esc
from lavimo.report.figures import image_file_uri
from lavimo.report.load import Missing, Tree

FIRST_IN_TOC = ("overview", "missing")  # listed first in the contents; the rest in document order


@functools.cache
def stylesheet() -> str:
    """The report's CSS (``report.css``, a package file), inlined into every report."""
    return resources.files("lavimo.report").joinpath("report.css").read_text(encoding="utf-8")


class Page:
    """What the sections add to as they render: the contents (one entry per heading) and the image count."""

    def __init__(self, missing: Missing) -> None:
        self.missing = missing
        self.toc: list[tuple[str, str, int]] = []  # (anchor, title, heading level)
        self.images = 0

    def heading(self, anchor: str, title: str, level: int = 2) -> str:
        """A heading with an anchor, listed in the contents."""
        self.toc.append((anchor, title, level))
        return f'<h{level} id="{esc(anchor)}">{esc(title)}</h{level}>'

    def opening(self, anchor: str, title: str, lead: str) -> str:
        """A section's heading and its lead paragraph (``lead`` is HTML)."""
        return self.heading(anchor, title) + f'<p class="lead">{lead}</p>'

    def img(self, uri: str, alt: str, css: str = "") -> str:
        """An ``<img>`` of a data URI, counted."""
        self.images += 1
        cls = f' class="{css}"' if css else ""
        return f'<img{cls} src="{uri}" alt="{esc(alt)}">'

    def figure(self, path: Path, alt: str, caption: str) -> str:
        """The PNG at ``path`` embedded with its caption; a note, listed as missing, when absent or unreadable."""
        if not path.exists():
            self.missing.add(f"{alt}: {path} missing")
            return f'<p class="na">No {esc(alt)}.</p>'
        try:
            uri = image_file_uri(path)
        except OSError as error:
            self.missing.add(f"{path}: unreadable ({error})")
            return f'<p class="na">{esc(alt)} unreadable.</p>'
        return f"<figure>{self.img(uri, alt)}<figcaption>{caption}</figcaption></figure>"

    def document(self, title: str, tree: Tree, body: str) -> str:
        """The whole HTML file: header, contents, ``body``, footer; the CSS inline."""
        entries = sorted(  # sorted is stable: the rest stay in document order
            self.toc, key=lambda e: FIRST_IN_TOC.index(e[0]) if e[0] in FIRST_IN_TOC else len(FIRST_IN_TOC)
        )
        generated = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        datasets = ", ".join(ds.label for ds in tree.datasets) or "none"
        header = (
            f'<header><h1>{esc(title)}</h1><p class="subtitle">Reproduction of LAVIMO (Yin et al., 2024): '
            f"text, video and motion in one embedding space. Datasets: {esc(datasets)}. Generated {esc(generated)} "
            f"by lavimo {esc(__version__)} from <code>{esc(tree.results)}</code>.</p></header>"
        )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>\n{stylesheet()}</style></head><body><main>{header}"
            f"{render_toc(entries)}{body}"
            f"<footer>lavimo {esc(__version__)} &middot; one self-contained file: images embedded, no scripts.</footer>"
            "</main></body></html>\n"
        )


def render_toc(entries: Sequence[tuple[str, str, int]]) -> str:
    """The contents: level-2 headings, each with its level-3 headings nested."""
    items: list[str] = []
    open_sub = False
    for anchor, title, level in entries:
        if level == 2:
            if open_sub:
                items.append("</ol></li>")
                open_sub = False
            elif items:
                items.append("</li>")
            items.append(f'<li><a href="#{esc(anchor)}">{esc(title)}</a>')
        else:
            if not open_sub:
                items.append("<ol>")
                open_sub = True
            items.append(f'<li><a href="#{esc(anchor)}">{esc(title)}</a></li>')
    if open_sub:
        items.append("</ol>")
    if items:
        items.append("</li>")
    return f'<nav class="toc"><div class="toc-title">Contents</div><ol>{"".join(items)}</ol></nav>'
