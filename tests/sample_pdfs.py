"""The real-world sample PDFs the tests read: py-pdf/sample-files, CC-BY-SA-4.0 (tests/data/pdfs/NOTICE.md).

Copied into the repository (with their notice) so a clean clone tests them too.
"""

from pathlib import Path

PDFS = Path(__file__).resolve().parent / "data" / "pdfs"
