"""The font every chart writes its words in: a CJK face, registered with matplotlib once per process.

Why this exists: a fresh server has no CJK font, and matplotlib then draws each Chinese character as an
empty box ("tofu"). The project therefore depends on ``noto-cjk-sans-otc`` (PyPI, SIL OFL 1.1), which
carries the unmodified upstream Noto Sans CJK Regular collection (Google and Adobe, version 2.004), so
``pip install`` brings the font wherever the code runs, for ``make demo`` and ``make test`` alike. Without
the package, a system copy is used (Debian's fonts-noto-cjk, Source Han Sans, WenQuanYi); without either,
one warning names the fix and the charts still render, with boxes for Chinese.

Registration goes through ``fontManager.addfont`` under a lock; renders then name the family explicitly on
every text (never through the global ``rcParams``), so a chart drawn in one worker thread cannot change the
look of another.
"""

from __future__ import annotations

import logging
import threading
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "noto_cjk_sans_otc"
PACKAGE_FILE = "NotoSansCJK-Regular.ttc"
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK JP",
)
"""In order of preference; simplified-Chinese forms first. (A matplotlib that registers only the first face
of a collection sees the JP face, which still covers every simplified character.)"""
LATIN_FALLBACK = "DejaVu Sans"
"""matplotlib's own font: digits and Latin letters never depend on the CJK font being there."""
SYSTEM_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
"""Where Debian and friends put CJK fonts, for a matplotlib font cache built before they were installed."""

_lock = threading.Lock()
_resolved: tuple[str, ...] | None = None


def _packaged_file() -> Path | None:
    try:
        path = files(PACKAGE).joinpath(PACKAGE_FILE)
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def _register() -> tuple[str, ...]:
    from matplotlib import font_manager

    candidates = [p for p in (_packaged_file(), *map(Path, SYSTEM_FILES)) if p is not None and p.is_file()]
    for path in candidates:
        try:
            font_manager.fontManager.addfont(str(path))
        except (OSError, RuntimeError) as exc:
            log.warning("charts: cannot load the font file %s: %s", path, exc)
    known = {f.name for f in font_manager.fontManager.ttflist}
    found = [name for name in CJK_FAMILIES if name in known]
    if not found:
        log.warning(
            "charts: no CJK font found; Chinese chart labels will show as empty boxes. Install the "
            "project's dependencies (pip install -e ., which brings %s) or Debian's fonts-noto-cjk.",
            PACKAGE.replace("_", "-"),
        )
        return (LATIN_FALLBACK,)
    return (found[0], LATIN_FALLBACK)


def chart_families() -> list[str]:
    """The font family list for chart text: the CJK family first (it has Latin glyphs too), then DejaVu
    Sans. The first call registers the font files; later calls return the answer it found."""
    global _resolved
    with _lock:
        if _resolved is None:
            _resolved = _register()
        return list(_resolved)


def has_cjk_font() -> bool:
    """Whether chart text can show Chinese (for a health check)."""
    return chart_families()[0] != LATIN_FALLBACK
