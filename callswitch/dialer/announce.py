"""Per-request announcements: the visitor's name, topic and page rendered by a text-to-speech engine.

When ``dialing.tts`` is configured (the daemon runs on the PBX host, next to Asterisk's sounds), the dialer
renders one WAV file per request, e.g. "Web callback from Ada Lovelace. About widgets. Page pricing.",
into ``sounds_dir`` and passes its name to the dialplan as ``CS_ANNOUNCE_FILE``; the agent hears it after
the prompts and the visitor's digits. Rendering runs while the agent's phone rings (it takes a fraction
of a second; the agent answers seconds later). If it fails or is late, Asterisk skips the missing file
with a warning and the agent still hears the prompts and the digits: the call never waits for it.

The commands run without a shell (arguments are substituted, never interpreted), with a timeout, and the
file appears atomically (written under a temporary name, then renamed). Files are removed when the request
is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callswitch.config import TtsConfig
from callswitch.logs import get_logger

__all__ = ["Announcer", "announcement_text"]

log = get_logger("callswitch.dialer.announce")
MAX_TEXT = 240
_SPEAKABLE = re.compile(r"[^\w .,'!?-]+", re.UNICODE)


def _speakable(value: Any, limit: int = 60) -> str:
    """Letters, digits and plain punctuation only (no markup, no control characters), shortened."""
    text = _SPEAKABLE.sub(" ", str(value or "")).strip()
    return re.sub(r"\s+", " ", text)[:limit].strip()


def _page_words(url: str | None) -> str:
    """``https://shop.example/products/blue-widget?x=1`` -> ``products blue widget``."""
    if not url:
        return ""
    path = urlsplit(url).path.strip("/")
    return _speakable(re.sub(r"[/_\-.]+", " ", path)) or "home"


def announcement_text(template: str, request: Mapping[str, Any]) -> str:
    """The sentence to speak for ``request`` (a ``callback_requests`` row or mapping)."""
    attributes = request.get("attributes") or {}
    product = attributes.get("product") if isinstance(attributes, Mapping) else None
    fields = {
        "name": _speakable(request.get("visitor_name")) or "a visitor",
        "topic": f"About {_speakable(product)}." if product else "",
        "page": _page_words(request.get("page_url")) or "unknown",
        "site": _speakable(request.get("site")),
    }
    text = re.sub(r"\s+", " ", template.format(**fields)).strip()[:MAX_TEXT]
    return text.lstrip("-").strip()  # never taken for an option of the engine's command line


class Announcer:
    """Renders and removes the per-request announcement files (see the module docstring)."""

    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self.dir = Path(config.sounds_dir)

    def sound_name(self, request_id: str) -> str:
        """What ``Playback()`` is given: ``<sound_prefix>/<request id>`` (no extension)."""
        return f"{self.config.sound_prefix}/{request_id}"

    def path(self, request_id: str) -> Path:
        return self.dir / f"{request_id}.wav"

    async def render(self, request_id: str, request: Mapping[str, Any]) -> bool:
        """Write the request's announcement; False (logged) if the engine failed or took too long."""
        if self.path(request_id).exists():
            return True  # a retry: already rendered
        text = announcement_text(self.config.text, request)
        work = Path(tempfile.mkdtemp(prefix="callswitch-tts-"))
        out = work / "announcement.wav"
        values = {"text": text, "work": str(work), "out": str(out)}
        try:
            for command in self.config.commands:
                args = [arg.replace("{text}", values["text"]).replace("{work}", values["work"])
                        .replace("{out}", values["out"]) for arg in command]
                if not await self._run(args, request_id):
                    return False
            if not out.exists() or out.stat().st_size == 0:
                log.warning("tts_no_output", callback_id=request_id, command=self.config.commands[-1][0])
                return False
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f".{request_id}.wav.tmp"
            shutil.copyfile(out, tmp)
            os.chmod(tmp, 0o644)  # Asterisk runs as another user
            os.replace(tmp, self.path(request_id))
            return True
        except OSError as exc:
            log.warning("tts_failed", callback_id=request_id, error=str(exc))
            return False
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _run(self, args: list[str], request_id: str) -> bool:
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:  # e.g. the engine is not installed
            log.warning("tts_failed", callback_id=request_id, program=args[0], error=str(exc))
            return False
        try:
            async with asyncio.timeout(self.config.timeout):
                _out, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            log.warning("tts_timeout", callback_id=request_id, program=args[0], timeout_s=self.config.timeout)
            return False
        if proc.returncode != 0:
            log.warning("tts_failed", callback_id=request_id, program=args[0], status=proc.returncode,
                        error=err.decode(errors="replace")[-300:])
            return False
        return True

    def remove(self, request_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(request_id).unlink()
