"""Vendor the web pages' third-party assets into `centre_app/pages/static/vendor/`.

Centres run on closed networks, so every asset a page loads is served by the centre itself:
no CDN, no font service. Run this only to change a version; its output is committed.

    npm pack nhsuk-frontend@10.6.1 uplot@1.6.32      # in an empty folder
    python scripts/vendor_assets.py <that folder>

- NHS.UK frontend 10.6.1 (MIT): the compiled style sheet and ES module, and its images. Its
  style sheet loads the Frutiger font from the NHS's own asset host; Frutiger is licensed, not
  ours to redistribute, so the `@font-face` rules are removed and text falls back to the font
  stack's next entry, Arial (as NHS.UK frontend itself does when the font cannot load). Image
  URLs are pointed at the vendored copies.
- uPlot 1.6.32 (MIT): the charts (small, canvas, no dependencies).

`VENDORED.md` in the output folder lists each file with its version, licence and SHA-256.
"""

import hashlib
import re
import shutil
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "centre_app" / "pages" / "static" / "vendor"
STATIC_URL = "/static/vendor"
NHSUK = "nhsuk-frontend-10.6.1.tgz"
UPLOT = "uplot-1.6.32.tgz"
MIT = """MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    extracted = archive.extractfile(f"package/{name}")
    if extracted is None:
        raise SystemExit(f"{name} is not a file in the package")
    return extracted.read()


def _without_font_faces(css: str) -> str:
    """The style sheet without its `@font-face` blocks (each names a font on a remote host)."""
    return re.sub(r"@font-face\{[^}]*\}", "", css)


def vendor(packs: Path) -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    nhsuk_out = OUT / "nhsuk-frontend"
    (nhsuk_out / "images").mkdir(parents=True)
    with tarfile.open(packs / NHSUK) as archive:
        css = _member(archive, "dist/nhsuk/nhsuk-frontend.min.css").decode()
        css = _without_font_faces(css).replace("url(/assets/images/", f"url({STATIC_URL}/nhsuk-frontend/images/")
        if "://" in css:
            raise SystemExit("the style sheet still names a remote URL")
        (nhsuk_out / "nhsuk-frontend.min.css").write_text(css)
        js = _member(archive, "dist/nhsuk/nhsuk-frontend.min.js").decode()
        js = js.replace("//# sourceMappingURL=nhsuk-frontend.min.js.map", "")
        (nhsuk_out / "nhsuk-frontend.min.js").write_text(js)
        for member in archive.getmembers():
            if member.name.startswith("package/dist/nhsuk/assets/images/") and member.isfile():
                (nhsuk_out / "images" / Path(member.name).name).write_bytes(_member(archive, member.name[8:]))
    (nhsuk_out / "LICENSE").write_text(MIT.format(holder="2025 NHS England"))
    uplot_out = OUT / "uplot"
    uplot_out.mkdir(parents=True)
    with tarfile.open(packs / UPLOT) as archive:
        (uplot_out / "uPlot.iife.min.js").write_bytes(_member(archive, "dist/uPlot.iife.min.js"))
        (uplot_out / "uPlot.min.css").write_bytes(_member(archive, "dist/uPlot.min.css"))
        (uplot_out / "LICENSE").write_bytes(_member(archive, "LICENSE"))
    lines = ["# Vendored assets", "", "Written by `scripts/vendor_assets.py`; do not edit by hand.", "",
             "| file | package | licence | SHA-256 |", "|---|---|---|---|"]
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            package = "uPlot 1.6.32" if path.relative_to(OUT).parts[0] == "uplot" else "nhsuk-frontend 10.6.1"
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"| `{path.relative_to(OUT)}` | {package} | MIT | `{digest[:16]}…` |")
    (OUT / "VENDORED.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    vendor(Path(sys.argv[1]))
