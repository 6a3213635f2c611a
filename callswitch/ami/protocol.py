"""Incremental Asterisk Manager Interface (AMI) wire protocol: parser and action encoder.

Framing (Asterisk 11 .. 22, protocol banner ``Asterisk Call Manager/<ver>``):

* the server first sends one banner line ``Asterisk Call Manager/11.0.0\\r\\n`` (no blank line after it);
* every message is a block of ``Key: Value\\r\\n`` lines terminated by an empty line (``\\r\\n\\r\\n``);
* keys may repeat (``Variable``, ``ChanVariable``, ``Output``, two ``Channel`` headers in a dialplan
  UserEvent ...): :class:`AmiMessage` maps a key to its FIRST value and :meth:`AmiMessage.getall` returns
  every value in order;
* Asterisk < 14 answered ``Action: Command`` with ``Response: Follows`` followed by raw output lines and
  ``--END COMMAND--``; the raw output may contain empty lines, so such a block ends only at
  ``--END COMMAND--\\r\\n\\r\\n``. Asterisk 20/22 send ``Response: Success`` with ``Output:`` headers
  instead (none of the Asterisk 22 captures contains ``Follows``); both are handled.

The parser never holds more than ``max_message_size`` bytes of an unterminated message: an over-long
message is discarded up to its terminator and counted in :attr:`ParserStats.oversized`. A block that has
none of ``Event``, ``Response`` or ``Action`` (line noise, garbage; ``Action`` so that a server - the
simulator - can parse what clients send) is counted in :attr:`ParserStats.malformed` and
dropped; a line without ``:`` inside a message is skipped (counted in :attr:`ParserStats.bad_lines` when
it precedes the ``Event``/``Response`` line, the only case the parser itself splits lines).

Messages are parsed lazily (see :class:`AmiMessage`): splitting the stream is done with a few C-level
``bytes``/``str`` operations per chunk, and header values are extracted only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "BANNER_PREFIX",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AmiMessage",
    "AmiParser",
    "ParserStats",
    "encode_action",
]

BANNER_PREFIX = "Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20  # 1 MiB: far above any real event (largest seen: ~3 KiB)

_TERM = b"\r\n\r\n"
_BANNER_B = BANNER_PREFIX.encode()
_FOLLOWS_B = b"Response: Follows"
_END_COMMAND = "--END COMMAND--"
_END_COMMAND_B = b"--END COMMAND--\r\n\r\n"


class AmiMessage(Mapping[str, str]):
    """One AMI message (event or response), read-only mapping ``header -> first value``.

    Parsed lazily: the parser only splits the stream into message blocks; :meth:`get` /
    ``msg[key]`` find the header in the raw text (first occurrence, case as sent), and the full
    header dict is built on first iteration / ``len`` / :meth:`getall` / :meth:`to_dict`. A header
    line is ``Key: Value`` (key = text before the first ``:``, one space after it is dropped); lines
    without ``:`` are skipped.

    ``content`` holds the raw output of a legacy ``Response: Follows``.
    """

    __slots__ = ("_headers", "_multi", "content", "raw")

    def __init__(self, raw: str = "", *, headers: dict[str, str] | None = None) -> None:
        self.raw = raw
        self.content = ""
        self._multi: dict[str, list[str]] | None = None
        self._headers: dict[str, str] | None = headers
        if headers is not None and not raw:
            self.raw = "\r\n".join(f"{k}: {v}" for k, v in headers.items())

    @classmethod
    def from_dict(cls, headers: Mapping[str, str]) -> AmiMessage:
        return cls(headers=dict(headers))

    # -- fast, lazy lookups ----------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        headers = self._headers
        if headers is not None:
            return headers.get(key, default)
        raw = self.raw
        probe = key + ":"
        if raw.startswith(probe):
            i = len(probe)
        else:
            i = raw.find("\r\n" + probe)
            if i < 0:
                return default
            i += len(probe) + 2
        end = raw.find("\r\n", i)
        if end < 0:
            end = len(raw)
        if raw.startswith(" ", i):
            i += 1
        return raw[i:end]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def event(self) -> str | None:
        raw = self.raw
        if raw.startswith("Event: "):
            end = raw.find("\r\n")
            return raw[7:end] if end >= 0 else raw[7:]
        return self.get("Event")

    @property
    def response(self) -> str | None:
        raw = self.raw
        if raw.startswith("Response: "):
            end = raw.find("\r\n")
            return raw[10:end] if end >= 0 else raw[10:]
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def is_event(self) -> bool:
        return self.event is not None

    @property
    def is_response(self) -> bool:
        return self.response is not None

    # -- materialised view ---------------------------------------------------------------------------
    def _materialise(self) -> dict[str, str]:
        headers = self._headers
        if headers is None:
            lines = self.raw.split("\r\n")
            try:  # common case: every line "Key: Value", no repeats -> one C-level dict build
                headers = dict([line.split(": ", 1) for line in lines])
            except ValueError:
                headers = None
            if headers is None or len(headers) != len(lines) or ":" in "".join(headers):
                headers, self._multi, _bad = _split_headers(self.raw)
            self._headers = headers
        return headers

    def __iter__(self) -> Iterator[str]:
        return iter(self._materialise())

    def __len__(self) -> int:
        return len(self._materialise())

    def to_dict(self) -> dict[str, str]:
        return dict(self._materialise())

    @property
    def multi(self) -> dict[str, list[str]] | None:
        """Headers that repeated -> all their values in order (``None`` when nothing repeated)."""
        self._materialise()
        return self._multi

    def getall(self, key: str) -> list[str]:
        """Every value of ``key`` in arrival order (empty list when absent)."""
        headers = self._materialise()
        multi = self._multi
        if multi is not None and key in multi:
            return list(multi[key])
        value = headers.get(key)
        return [] if value is None else [value]

    def get_ci(self, key: str, default: str | None = None) -> str | None:
        """Case-insensitive lookup (``UniqueID`` in Cdr vs ``Uniqueid`` elsewhere)."""
        value = self.get(key)
        if value is not None:
            return value
        low = key.lower()
        for k, v in self._materialise().items():
            if k.lower() == low:
                return v
        return default

    def variables(self, key: str = "Variable") -> dict[str, str]:
        """``Variable: NAME=value`` style headers as a dict (split at the first ``=``)."""
        out: dict[str, str] = {}
        for item in self.getall(key):
            name, _, value = item.partition("=")
            out[name] = value
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AmiMessage):
            return self._materialise() == other._materialise() and self.multi == other.multi
        if isinstance(other, Mapping):
            return self._materialise() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = f"Event={self.event!r}" if self.is_event else f"Response={self.response!r}"
        return f"<AmiMessage {kind}>"


def _split_headers(block: str) -> tuple[dict[str, str], dict[str, list[str]] | None, int]:
    """Exact line-by-line split: (first values, repeated headers or None, number of bad lines)."""
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] | None = None
    bad = 0
    for line in block.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key:
            if line:
                bad += 1
            continue
        if value.startswith(" "):
            value = value[1:]
        if key in headers:
            if multi is None:
                multi = {}
            values = multi.get(key)
            if values is None:
                multi[key] = [headers[key], value]
            else:
                values.append(value)
        else:
            headers[key] = value
    return headers, multi, bad


@dataclass
class ParserStats:
    messages: int = 0
    oversized: int = 0  # messages dropped because they exceeded max_message_size
    malformed: int = 0  # blocks without Event/Response (garbage)
    bad_lines: int = 0  # lines without ':' inside a message (skipped)
    bytes_discarded: int = 0


def _next_message_start(buf: bytes, pos: int) -> int:
    """Index of the first blank line after ``pos`` that is followed by an Event/Response header."""
    a = buf.find(b"\r\n\r\nEvent: ", pos)
    b = buf.find(b"\r\n\r\nResponse: ", pos)
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _parse_follows(block: str) -> AmiMessage:
    """Legacy ``Response: Follows``: headers, then raw output lines, then ``--END COMMAND--``."""
    lines = block.split("\r\n")
    headers: dict[str, str] = {}
    i = 0
    while i < len(lines):
        key, sep, value = lines[i].partition(": ")
        if not sep or key not in ("Response", "Privilege", "ActionID", "Message"):
            break
        headers.setdefault(key, value)
        i += 1
    output = "\r\n".join(lines[i:])
    if output.endswith(_END_COMMAND):
        output = output[: -len(_END_COMMAND)]
    output = output.rstrip("\r\n")
    out_lines = [ln.rstrip("\r") for ln in output.split("\n")] if output else []
    if out_lines:
        headers["Output"] = out_lines[0]
    msg = AmiMessage(block, headers=headers)
    msg.content = output
    if len(out_lines) > 1:
        msg._multi = {"Output": out_lines}
    return msg


class AmiParser:
    """Incremental AMI parser: ``feed(bytes) -> list[AmiMessage]``.

    ``expect_banner`` (default True): the first line of the stream is taken as the banner when it starts
    with ``Asterisk Call Manager/`` (exposed as :attr:`banner` / :attr:`version`). TCP chunks may split
    anywhere, including inside the ``\\r\\n\\r\\n`` terminator or a UTF-8 sequence.
    """

    __slots__ = ("_buf", "_discarding", "_expect_banner", "banner", "encoding", "max_message_size", "stats")

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        expect_banner: bool = True,
        encoding: str = "utf-8",
    ) -> None:
        if max_message_size < 64:
            raise ValueError("max_message_size must be >= 64")
        self.max_message_size = max_message_size
        self.encoding = encoding
        self.banner: str | None = None
        self.stats = ParserStats()
        self._buf = b""
        self._discarding = False
        self._expect_banner = expect_banner

    @property
    def version(self) -> str | None:
        if self.banner is None:
            return None
        return self.banner[len(BANNER_PREFIX) :].strip()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget everything buffered (call on reconnect); a new banner is expected."""
        self._buf = b""
        self._discarding = False
        self._expect_banner = True
        self.banner = None

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Consume one chunk of received bytes; return the messages completed by it, in order."""
        buf = self._buf + data if self._buf else data
        out: list[AmiMessage] = []
        if self._discarding:
            buf = self._skip_oversized(buf)
            if self._discarding:
                self._buf = buf
                return out
        if self._expect_banner and buf:
            if len(buf) < len(_BANNER_B) and _BANNER_B.startswith(buf):
                self._buf = buf  # could still become the banner
                return out
            if buf.startswith(_BANNER_B):
                nl = buf.find(b"\r\n")
                if nl < 0 and len(buf) <= self.max_message_size:
                    self._buf = buf
                    return out
                if nl >= 0:
                    self.banner = buf[:nl].decode(self.encoding, "replace")
                    buf = buf[nl + 2 :]
            self._expect_banner = False

        while True:
            if self._discarding:
                buf = self._skip_oversized(buf)
                if self._discarding:
                    break
            end = buf.rfind(_TERM)
            if end >= 0:
                if _FOLLOWS_B in buf and _FOLLOWS_B in buf[: end + 4]:
                    buf = self._feed_with_follows(buf, out)
                else:
                    self._parse_region(buf[:end], out)
                    buf = buf[end + 4 :]
            if len(buf) > self.max_message_size:
                self.stats.oversized += 1
                self._discarding = True
                continue  # drop up to the next terminator, then parse what follows it
            break
        self._buf = buf
        return out

    def _parse_region(self, region: bytes, out: list[AmiMessage]) -> None:
        text = region.decode(self.encoding, "replace")
        maxsize = self.max_message_size
        stats = self.stats
        append = out.append
        n = 0
        for block in text.split("\r\n\r\n"):
            if block.startswith(("Event: ", "Response: ", "Action: ")):
                if len(block) > maxsize:  # decoded characters; equals bytes for ASCII headers
                    stats.oversized += 1
                    stats.bytes_discarded += len(block)
                    continue
                append(AmiMessage(block))
                n += 1
                continue
            # rare: stray line ends, garbage lines before the headers, unusual header order
            block = block.lstrip("\r\n")
            if not block:
                continue
            if len(block) > maxsize:
                stats.oversized += 1
                stats.bytes_discarded += len(block)
                continue
            headers, multi, bad = _split_headers(block)
            stats.bad_lines += bad
            if "Event" not in headers and "Response" not in headers and "Action" not in headers:
                stats.malformed += 1
                continue
            msg = AmiMessage(block, headers=headers)
            msg._multi = multi
            append(msg)
            n += 1
        stats.messages += n

    def _feed_with_follows(self, buf: bytes, out: list[AmiMessage]) -> bytes:
        """Slow path, message by message, used only when a legacy ``Response: Follows`` is buffered."""
        pos = 0
        while True:
            # skip stray line ends between messages
            while buf.startswith(b"\r\n", pos):
                pos += 2
            if buf.startswith(_FOLLOWS_B, pos):
                end = buf.find(_END_COMMAND_B, pos)
                nxt = _next_message_start(buf, pos)
                if end < 0 or (nxt >= 0 and nxt < end):
                    # no "--END COMMAND--" before the next message: not a legacy command response
                    # after all (garbage, or a truncated one); end it at the blank line
                    if nxt < 0:
                        break
                    block = buf[pos:nxt].decode(self.encoding, "replace")
                    pos = nxt + 4
                else:
                    block = buf[pos : end + len(_END_COMMAND_B) - 4].decode(self.encoding, "replace")
                    pos = end + len(_END_COMMAND_B)
                if len(block) > self.max_message_size:
                    self.stats.oversized += 1
                    continue
                out.append(_parse_follows(block))
                self.stats.messages += 1
                continue
            end = buf.find(_TERM, pos)
            if end < 0:
                break
            self._parse_region(buf[pos:end], out)
            pos = end + 4
        return buf[pos:]

    def _skip_oversized(self, buf: bytes) -> bytes:
        """Drop bytes up to and including the next terminator; keep 3 bytes in case it is split."""
        end = buf.find(_TERM)
        if end >= 0:
            self.stats.bytes_discarded += end + 4
            self._discarding = False
            return buf[end + 4 :]
        keep = buf[-3:]
        self.stats.bytes_discarded += len(buf) - len(keep)
        return keep


def _check(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI {what} must not contain CR or LF: {text!r}")
    return text


HeaderValue = str | int | Iterable[str]


def encode_action(
    action: str,
    headers: Mapping[str, HeaderValue] | Iterable[tuple[str, str]] = (),
    *,
    action_id: str | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """Encode one action: ``Action: X\\r\\nKey: V\\r\\n...\\r\\n\\r\\n``.

    ``headers`` is a mapping (a list/tuple value gives one header line per item, e.g.
    ``{"Variable": ["A=1", "B=2"]}``) or an iterable of ``(key, value)`` pairs kept in order. CR/LF in
    any key or value raise ``ValueError`` (header injection: caller names come from web visitors).
    """
    parts = [f"Action: {_check(action, 'action')}\r\n"]
    if action_id is not None:
        parts.append(f"ActionID: {_check(action_id, 'ActionID')}\r\n")
    items: Iterable[tuple[str, HeaderValue]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        _check(key, "header name")
        if not key or ":" in key:
            raise ValueError(f"invalid AMI header name: {key!r}")
        if key.lower() == "action":
            raise ValueError("'Action' is given as the first argument")
        if isinstance(value, str | int):
            parts.append(f"{key}: {_check(str(value), key)}\r\n")
        else:
            for v in value:
                parts.append(f"{key}: {_check(str(v), key)}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode(encoding)
