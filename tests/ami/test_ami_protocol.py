"""AmiParser / encode_action against the real Asterisk 22 transcripts, plus property tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from ami_transcripts import DATA, message_name, require_shared, shared_pairs, summary_lines, transcript_pairs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callswitch.ami import AmiMessage, AmiParser, encode_action

BUNDLED = transcript_pairs(DATA)


def parse_all(data: bytes, chunks: list[int] | None = None, **kw: object) -> tuple[list[AmiMessage], AmiParser]:
    parser = AmiParser(**kw)  # type: ignore[arg-type]
    out: list[AmiMessage] = []
    if chunks is None:
        out.extend(parser.feed(data))
    else:
        pos = 0
        for n in chunks:
            out.extend(parser.feed(data[pos : pos + n]))
            pos += n
        out.extend(parser.feed(data[pos:]))
    return out, parser


def random_splits(data: bytes, rnd: random.Random, lo: int = 1, hi: int = 4096) -> list[int]:
    sizes, total = [], 0
    while total < len(data):
        n = rnd.randint(lo, hi)
        sizes.append(n)
        total += n
    return sizes


def fingerprint(msgs: list[AmiMessage]) -> list[tuple[tuple[str, str], ...]]:
    return [tuple(m.items()) for m in msgs]


# --------------------------------------------------------------------------- transcripts vs summaries
def _check_against_summary(wire: Path, summary: Path) -> None:
    data = wire.read_bytes()
    expected = [s.name for s in summary_lines(summary)]
    msgs, parser = parse_all(data)
    assert [message_name(m) for m in msgs] == expected, wire.name
    assert parser.stats.malformed == parser.stats.oversized == 0
    assert parser.buffered == 0
    rnd = random.Random(wire.name)
    for _ in range(3):
        split, _ = parse_all(data, random_splits(data, rnd, 1, 700))
        assert fingerprint(split) == fingerprint(msgs)


@pytest.mark.parametrize("pair", BUNDLED, ids=[p[0].name for p in BUNDLED])
def test_bundled_transcripts_match_summaries(pair: tuple[Path, Path]) -> None:
    _check_against_summary(*pair)


def test_bundled_data_present() -> None:
    assert len(BUNDLED) >= 4


def test_every_shared_transcript_matches_its_summary() -> None:
    require_shared()
    pairs = shared_pairs()
    assert len(pairs) >= 45
    for wire, summary in pairs:
        _check_against_summary(wire, summary)


def test_shared_transcripts_byte_by_byte_splits() -> None:
    require_shared()
    for wire, _ in shared_pairs()[:12]:
        data = wire.read_bytes()
        whole, _ = parse_all(data)
        onebyone, _ = parse_all(data, [1] * len(data))
        assert fingerprint(onebyone) == fingerprint(whole)


# --------------------------------------------------------------------------- specific wire facts
def test_banner_and_login() -> None:
    data = (DATA / "login_raw.txt").read_bytes()
    for split in ([len(data)], [5, 10, 3, 200], [1] * len(data)):
        msgs, parser = parse_all(data, split)
        assert parser.banner == "Asterisk Call Manager/11.0.0"
        assert parser.version == "11.0.0"
        assert [message_name(m) for m in msgs] == ["Response: Success", "FullyBooted"]
        assert msgs[0]["Message"] == "Authentication accepted"
        assert msgs[0].action_id == "login-raw-1"
        assert msgs[1]["Status"] == "Fully Booted"
    bad, _ = parse_all((DATA / "login_raw_badsecret.txt").read_bytes())
    assert bad[0].response == "Error" and bad[0]["Message"] == "Authentication failed"


def test_no_banner_is_fine() -> None:
    msgs, parser = parse_all((DATA / "ping.txt").read_bytes())
    assert parser.banner is None
    assert msgs[0]["Ping"] == "Pong" and msgs[0]["Timestamp"] == "1795403834.525729"


def test_repeated_headers_keep_first_and_all() -> None:
    msgs, _ = parse_all((DATA / "filter_add_effect.txt").read_bytes())
    ev = msgs[2]
    assert ev["Channel"] == "PJSIP/carrier-0000002e"
    assert ev.getall("Channel") == ["PJSIP/carrier-0000002e", "PJSIP/carrier-0000002e"]
    assert ev["Note"] == "hello from dialplan"
    assert ev["AccountCode"] == ""
    raw = b"Event: VarSet\r\nVariable: A=1\r\nVariable: B=x=y\r\nVariable: C=\r\n\r\n"
    (m,), _ = parse_all(raw, expect_banner=False)
    assert m["Variable"] == "A=1"
    assert m.getall("Variable") == ["A=1", "B=x=y", "C="]
    assert m.variables() == {"A": "1", "B": "x=y", "C": ""}
    assert m.getall("Missing") == []


def test_lazy_get_matches_materialised_dict() -> None:
    msgs, _ = parse_all((DATA / "A_decline.txt").read_bytes())
    for m in msgs:
        full = m.to_dict()
        for key, value in full.items():
            assert m.get(key) == value
        assert m.get("NoSuchHeader") is None
        assert "Channe" not in m  # prefix of a key is not a key
    cdr = next(m for m in msgs if m.event == "Cdr")
    assert cdr.get("Uniqueid") is None and cdr.get_ci("Uniqueid") == cdr["UniqueID"]


def test_value_with_colon_space() -> None:
    raw = (b"Event: Newexten\r\nApplication: UserEvent\r\nAppData: CallbackAgentAnswered,CB_ID: cbA03\r\n"
           b"Empty: \r\nNoSpace:x\r\n\r\n")
    (m,), _ = parse_all(raw)
    assert m["AppData"] == "CallbackAgentAnswered,CB_ID: cbA03"
    assert m["Empty"] == "" and m["NoSpace"] == "x"
    assert m.to_dict() == {"Event": "Newexten", "Application": "UserEvent",
                           "AppData": "CallbackAgentAnswered,CB_ID: cbA03", "Empty": "", "NoSpace": "x"}


def test_response_follows_legacy_command() -> None:
    raw = (b"Asterisk Call Manager/2.10.0\r\nResponse: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
           b"Channel   Location\r\n\r\n0 active channels\r\n--END COMMAND--\r\n\r\n"
           b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
    for split in ([len(raw)], [1] * len(raw), [60, 7, 30]):
        msgs, _ = parse_all(raw, split)
        assert [message_name(m) for m in msgs] == ["Response: Follows", "FullyBooted"]
        assert msgs[0].action_id == "c1"
        assert msgs[0].content == "Channel   Location\r\n\r\n0 active channels"
        assert msgs[0].getall("Output") == ["Channel   Location", "", "0 active channels"]


def test_modern_command_output_headers() -> None:
    raw = b"Response: Success\r\nActionID: c2\r\nMessage: Command output follows\r\nOutput: a\r\nOutput: b\r\n\r\n"
    (m,), _ = parse_all(raw)
    assert m.getall("Output") == ["a", "b"]


def test_utf8_split_inside_character() -> None:
    raw = "Event: UserEvent\r\nCallerIDName: Jürgen Müller\r\n\r\n".encode()
    cut = raw.index("ü".encode()) + 1
    (m,), _ = parse_all(raw, [cut])
    assert m["CallerIDName"] == "Jürgen Müller"


def test_oversized_message_is_dropped_and_next_survives() -> None:
    big = b"Event: Huge\r\n" + b"X: " + b"a" * 5000 + b"\r\n\r\n"
    ok = b"Event: Small\r\nA: 1\r\n\r\n"
    for split in ([len(big + ok)], [100] * 60, [1] * len(big + ok)):
        msgs, parser = parse_all(big + ok, split, max_message_size=1024, expect_banner=False)
        assert [m.event for m in msgs] == ["Small"]
        assert parser.stats.oversized == 1
        assert parser.buffered <= 1024 + 4


def test_unterminated_garbage_is_bounded() -> None:
    parser = AmiParser(max_message_size=4096)
    for _ in range(1000):
        assert parser.feed(b"z" * 1000) == []
        assert parser.buffered <= 4096
    assert parser.feed(b"\r\n\r\nEvent: After\r\n\r\n")[0].event == "After"


def test_garbage_blocks_counted() -> None:
    raw = b"hello\r\n\r\nno colon here\r\nstill none\r\n\r\nFoo: bar\r\n\r\nEvent: Ok\r\n\r\n"
    msgs, parser = parse_all(raw, expect_banner=False)
    assert [m.event for m in msgs] == ["Ok"]
    assert parser.stats.malformed == 3


def test_stray_line_ends_between_messages() -> None:
    raw = b"\r\n\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n"
    msgs, _ = parse_all(raw, expect_banner=False)
    assert [m.event for m in msgs] == ["A", "B"]


def test_message_mapping_api() -> None:
    m = AmiMessage.from_dict({"Event": "Hangup", "Cause": "16"})
    assert m.event == "Hangup" and m["Cause"] == "16" and len(m) == 2 and dict(m) == m.to_dict()
    assert m == {"Event": "Hangup", "Cause": "16"}
    with pytest.raises(KeyError):
        m["Nope"]


# --------------------------------------------------------------------------- encoder
def test_encode_action_matches_recorded_bytes() -> None:
    sent = (DATA / "A_decline.action.txt").read_bytes()
    encoded = encode_action("Originate", [
        ("ActionID", "cbA03"), ("Async", "true"), ("CallerID", '"Web Callback" <17735550201>'),
        ("Channel", "PJSIP/13125550111@carrier"), ("ChannelId", "cbA03-a1"), ("Context", "cs-ref-whisper"),
        ("Exten", "s"), ("Priority", "1"), ("Timeout", "30000"),
        ("Variable", "CB_ID=cbA03"), ("Variable", "CUSTOMER=17735550201"),
    ])
    assert encoded == sent
    assert encode_action("Ping", action_id="act-ping-1") == (DATA / "ping.action.txt").read_bytes()
    assert encode_action("Originate", {"Variable": ["A=1", "B=2"], "Priority": 1}, action_id="x") == (
        b"Action: Originate\r\nActionID: x\r\nVariable: A=1\r\nVariable: B=2\r\nPriority: 1\r\n\r\n")


@pytest.mark.parametrize("bad", [
    {"CallerID": "evil\r\nAction: Originate"}, {"X\r\nY": "1"}, {"A:B": "1"}, {"": "1"}, {"Action": "Ping"},
])
def test_encode_action_rejects_injection(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        encode_action("UserEvent", bad)


def test_encode_roundtrip() -> None:
    data = encode_action("UserEvent", {"UserEvent": "T", "Variable": ["A=1", "A=2"]}, action_id="r1")
    (m,), _ = parse_all(data.replace(b"Action: UserEvent", b"Event: UserEvent"), expect_banner=False)
    assert m.getall("Variable") == ["A=1", "A=2"] and m.action_id == "r1"


# --------------------------------------------------------------------------- property tests
_STREAM = b"".join((DATA / n).read_bytes() for n in ("A_agent_busy.txt", "coreshowchannels_2up.txt",
                                                      "filter_add_effect.txt", "userevent.txt"))
_REFERENCE, _ = parse_all(_STREAM)

_header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters=":"),
                       min_size=1, max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(_STREAM)), max_size=60))
def test_any_split_gives_same_messages(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    msgs, parser = parse_all(_STREAM, sizes)
    assert fingerprint(msgs) == fingerprint(_REFERENCE)
    assert parser.buffered == 0


_garbage_line = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n")


@settings(max_examples=150, deadline=None)
@given(
    garbage=st.lists(st.one_of(_garbage_line, st.binary(max_size=3000)), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=30),
)
def test_garbage_never_hangs_or_loses_following_message(garbage: list[bytes], cuts: list[int]) -> None:
    # garbage of any kind, then a message terminator: the valid messages after it must all arrive
    noise = b"".join(garbage) + b"\r\n\r\n"
    data = noise + _STREAM
    points = sorted({c for c in cuts if c <= len(data)})
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    msgs, parser = parse_all(data, sizes, max_message_size=2048, expect_banner=False)
    tail = fingerprint(msgs)[-len(_REFERENCE) :]
    assert tail == fingerprint(_REFERENCE)
    assert parser.buffered <= 2048 + 4


@settings(max_examples=100, deadline=None)
@given(headers=st.lists(st.tuples(_header_text.filter(lambda s: s.strip() == s), _header_text), max_size=8))
def test_roundtrip_arbitrary_headers(headers: list[tuple[str, str]]) -> None:
    data = encode_action("X", headers).replace(b"Action: X", b"Event: X", 1)
    (m,), _ = parse_all(data, expect_banner=False)
    for key, _value in headers:
        assert m.getall(key) == [v for k, v in headers if k == key]
        assert m.get(key) == next(v for k, v in headers if k == key)
