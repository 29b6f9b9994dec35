"""Write gnu_time_manual.pdf (the RAG held-out evaluation document) from Debian's GNU time manual.

The text is the GNU time manual as Debian ships it (/usr/share/info/time.info.gz, GNU time 1.9,
GFDL 1.3 or later, no invariant sections), from its title to the end of "Reporting bugs": Info's node
lines ("File: time.info, Node: ...") and menus are left out, nothing else is changed. It is kept as
time_manual.txt beside this script, so the PDF can be made again without the Info file. Pages are
filled line by line (60 lines a page, monospaced, as the Info reader shows them), so sections run
across page breaks as in a real manual; each page has a running header and its number.

Usage: .venv/bin/python assets/samples/rag_heldout/make_pdf.py [--from-info /usr/share/info/time.info.gz]
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT = HERE / "time_manual.txt"
PDF = HERE / "gnu_time_manual.pdf"
LINES_PER_PAGE = 60
HEADER = "GNU time manual - GFDL 1.3 or later"


def from_info(path: Path) -> str:
    """The manual's text from its Info file: up to the licence appendix, without node lines and menus."""
    raw = gzip.decompress(path.read_bytes()).decode("utf-8").replace("\x1f", "")
    raw = raw.split("File: time.info,  Node: GNU Free Documentation License", 1)[0]
    out, in_menu = [], False
    for line in raw.splitlines():
        if line.startswith(("INFO-DIR-SECTION", "START-INFO-DIR-ENTRY", "END-INFO-DIR-ENTRY", "* time: (time)")):
            continue
        if line.startswith("File: time.info,"):
            continue
        if line.startswith("* Menu:"):
            in_menu = True
            continue
        if in_menu:
            if line.startswith("* ") or not line.strip():
                continue
            in_menu = False
        out.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def pages(text: str) -> list[list[str]]:
    lines = text.splitlines()
    return [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]


def write_pdf(text: str, path: Path = PDF) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    metadata = {"Title": "GNU time manual", "Author": "Free Software Foundation", "CreationDate": None}
    with (
        matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans Mono"}),
        PdfPages(path, metadata=metadata) as pdf,
    ):
        for number, lines in enumerate(pages(text), start=1):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.08, 0.96, HEADER, fontsize=8, color="0.4")
            fig.text(0.08, 0.93, "\n".join(lines) or " ", fontsize=8.6, va="top", linespacing=1.25)
            fig.text(0.5, 0.03, f"page {number}", fontsize=8, ha="center", color="0.4")
            pdf.savefig(fig)
            plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from-info", type=Path, help="re-extract time_manual.txt from this Info file first")
    args = parser.parse_args()
    if args.from_info:
        TEXT.write_text(from_info(args.from_info), encoding="utf-8")
    print(write_pdf(TEXT.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
