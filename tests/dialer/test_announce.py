"""Per-request announcements (dialing.tts): the text, the rendering, the config, and the dialer's use of them."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from callswitch.config import ConfigError, TtsConfig, load_config
from callswitch.dialer.announce import Announcer, announcement_text
from tests.dialer.conftest import CONFIG, ROUTING, start_stack, stop_stack

# A stand-in for espeak-ng + sox: writes a valid 8 kHz WAV to argv[2] and the text it was given next to it.
FAKE_TTS = textwrap.dedent("""
    import sys, wave
    text, out = sys.argv[1], sys.argv[2]
    w = wave.open(out, "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b"\\0\\0" * 800); w.close()
    open(out + ".txt", "w").write(text)
""")


def fake_config(tmp_path: Path, **kw: object) -> TtsConfig:
    script = tmp_path / "fake_tts.py"
    script.write_text(FAKE_TTS)
    args: dict[str, object] = {"sounds_dir": str(tmp_path / "sounds" / "callswitch-tts"),
                               "commands": ((sys.executable, str(script), "{text}", "{out}"),)}
    args.update(kw)
    return TtsConfig(**args)  # type: ignore[arg-type]


def test_announcement_text_speaks_name_topic_and_page() -> None:
    row = {"visitor_name": "Ada <b>Lovelace</b>", "attributes": {"product": "blue widgets"},
           "page_url": "https://shop.example/products/blue-widget?utm_source=x", "site": "shop"}
    assert announcement_text(TtsConfig(sounds_dir="/x").text, row) == \
        "Web callback from Ada b Lovelace b. About blue widgets. Page products blue widget."
    bare = {"visitor_name": "", "attributes": {}, "page_url": None}
    assert announcement_text("{name}. {topic} Page {page}.", bare) == "a visitor. Page unknown."
    assert not announcement_text("{name}", {"visitor_name": "--help"}).startswith("-")


async def test_render_writes_the_file_atomically_and_remove_deletes_it(tmp_path: Path) -> None:
    announcer = Announcer(fake_config(tmp_path))
    row = {"visitor_name": "Ada", "attributes": {"product": "widgets"}, "page_url": "https://s.example/pricing"}
    assert await announcer.render("r1", row)
    path = announcer.path("r1")
    assert path == tmp_path / "sounds" / "callswitch-tts" / "r1.wav" and path.stat().st_size > 1600
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert announcer.sound_name("r1") == "callswitch-tts/r1"
    assert [p.name for p in path.parent.iterdir()] == ["r1.wav"]  # no temporary file left
    announcer.remove("r1")
    announcer.remove("r1")  # twice is fine
    assert not path.exists()


async def test_render_failures_are_reported_not_raised(tmp_path: Path) -> None:
    failing = Announcer(fake_config(tmp_path, commands=((sys.executable, "-c", "raise SystemExit(3)", "{out}"),)))
    assert not await failing.render("r1", {})
    missing = Announcer(fake_config(tmp_path, commands=(("no-such-tts-engine", "{out}"),)))
    assert not await missing.render("r2", {})
    slow = Announcer(fake_config(tmp_path, timeout=0.2,
                                 commands=((sys.executable, "-c", "import time; time.sleep(5)", "{out}"),)))
    assert not await asyncio.wait_for(slow.render("r3", {}), 3)
    assert not list((tmp_path / "sounds").glob("**/*.wav"))


def test_tts_config_errors_are_located(tmp_path: Path) -> None:
    cfg = tmp_path / "callswitch.yaml"
    cfg.write_text(textwrap.dedent("""\
        database: {dsn: "postgresql://x@127.0.0.1/db"}
        sites: {shop: {site_key: pk_shop_123456}}
        dialing:
          tts:
            sounds_dir: sounds/tts
            text: "Call from {nom}"
            commands:
              - [espeak-ng, "{text}"]
        """))
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    text = "\n".join(str(p) for p in err.value.problems)
    assert "callswitch.yaml:5" in text and "dialing.tts.sounds_dir" in text
    assert "callswitch.yaml:6" in text and "dialing.tts.text" in text
    assert "dialing.tts.commands" in text and "{out}" in text
    cfg.write_text(cfg.read_text().replace("sounds/tts", "/var/lib/asterisk/sounds/callswitch-tts")
                   .replace("{nom}", "{name}").replace('"{text}"]', '"{text}", -w, "{out}"]'))
    tts = load_config(cfg, env={}).dialing.tts
    assert tts is not None and tts.commands == (("espeak-ng", "{text}", "-w", "{out}"),)


async def test_the_dialer_renders_the_announcement_while_the_agent_rings(clean_db: str, tmp_path: Path) -> None:
    tts = fake_config(tmp_path)
    script = tts.commands[0][1]
    # (start_stack formats the template: braces meant for the TTS command are doubled)
    config = CONFIG.replace("  customer_timeout: 10\n", "  customer_timeout: 10\n  tts:\n"
                            f"    sounds_dir: {tts.sounds_dir}\n"
                            f"    commands: [[{json.dumps(sys.executable)}, {json.dumps(script)}, \"{{{{text}}}}\","
                            " \"{{out}}\"]]\n")
    routing = ROUTING.replace("{members}", '"+13125550100"').replace("{strategy}", "sequential") \
        .replace("{mode}", "agent_first")
    st = await start_stack(clean_db, tmp_path, routing, config=config, time_scale=0.2)
    try:
        rid = await st.post("+17735550200")
        path = Path(tts.sounds_dir) / f"{rid}.wav"
        async with asyncio.timeout(30):
            while not path.exists():  # rendered during the call
                await asyncio.sleep(0.02)
        row = await st.wait_final(rid)
    finally:
        await stop_stack(st)
    assert row["outcome"] == "connected"
    assert st.sim.originates[0].variables["CS_ANNOUNCE_FILE"] == f"callswitch-tts/{rid}"
    assert not path.exists()  # removed once the attempt was over
