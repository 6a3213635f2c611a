"""The dialer's AMI connection: panoramisk for the connection and actions, our parser, our failure policy.

panoramisk (on the design card) keeps the connection and the actions: :class:`panoramisk.Manager` opens the
TCP connection (``Manager.connect``) and closes it, and every action is a :class:`panoramisk.actions.Action`
(ActionID, future) registered in the protocol's ``responses`` table and written by ``AMIProtocol.send``.
What is replaced, and why:

* reading: ``data_received`` feeds :class:`~callswitch.ami.protocol.AmiParser` (exact framing, lazy messages)
  and routes each message like panoramisk's ``handle_message`` does - a message whose ActionID is pending
  goes to that action, everything else is an event for ``on_event``;
* completion: an action is complete at its ``Response`` unless the response opens a list (``EventList:
  start``, e.g. CoreShowChannels), which then collects the events with its ActionID up to the list's
  ``...Complete`` event. panoramisk 1.4 would keep an async ``Originate`` open until the OriginateResponse
  event (up to the whole dial timeout) and swallow that event; here ``Originate`` returns at ``Response:
  Success`` (queued) and the OriginateResponse reaches ``on_event`` like any other event;
* connection loss: every pending action fails with :class:`AmiConnectionLost`. panoramisk would put them on
  ``awaiting_actions`` and send them again after the next login - an Originate must never be re-sent
  blindly (the PBX may have queued it already), so nothing is ever re-queued and the caller decides;
* the connect loop, login, keepalive and reconnect are :class:`AmiClient`'s (panoramisk's ping and
  reconnect delays are whole seconds without backoff, and a refused login would be retried every 2 s).

Callbacks run on the event loop: ``on_event`` is called synchronously for every event in wire order and must
not block. Because events are dispatched as they are read, the OriginateResponse of a quick failure can reach
``on_event`` before ``originate()`` has returned to its caller: register the attempt under its ActionID first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from callswitch.ami.protocol import AmiMessage, AmiParser, encode_action
from callswitch.logs import get_logger

__all__ = [
    "DEFAULT_EVENT_FILTERS",
    "AmiActionFailed",
    "AmiActionTimeout",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiLoginFailed",
    "AmiNotConnected",
    "AmiServer",
]

log = get_logger("callswitch.dialer.ami")

# Events the dialer needs. AMI ``Filter`` is a regex searched in the whole event text and, once a filter is
# added, a whitelist for that session (it cannot be removed; a new session starts unfiltered). The regex is
# not anchored: "Event: Hangup" also lets HangupRequest through, "Event: Status" StatusComplete - harmless.
# Responses are never filtered; list items (CoreShowChannel, Status ...) are part of the action's answer, not
# broadcast events, and are listed here all the same so that they get through whatever the PBX's version.
DIALER_EVENTS = (
    "OriginateResponse", "Newchannel", "Newstate", "DialBegin", "DialEnd", "DialState", "Hangup",
    "HangupRequest", "SoftHangupRequest", "BridgeEnter", "BridgeLeave", "UserEvent", "Cdr", "FullyBooted",
    "Shutdown", "LocalOptimizationBegin", "LocalOptimizationEnd", "DTMFEnd",
    "CoreShowChannel", "CoreShowChannelsComplete", "Status", "StatusComplete",
    "ListDialplan", "ShowDialPlanComplete", "EndpointDetail", "EndpointDetailComplete",
    "DBGetResponse", "DBGetComplete",
)
DEFAULT_EVENT_FILTERS: tuple[str, ...] = ("Event: (" + "|".join(DIALER_EVENTS) + ")",)

_OK_RESPONSES = frozenset({"Success", "Goodbye", "Follows"})
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION_IN_OUTPUT = re.compile(r"Asterisk (\S+)")


# ---------------------------------------------------------------------------------------------- public types
@dataclass(frozen=True)
class AmiServer:
    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)


class AmiError(Exception):
    """Base of every error raised by :class:`AmiClient`."""


class AmiNotConnected(AmiError):
    """No logged-in connection: the action was NOT sent."""


class AmiLoginFailed(AmiError):
    """The PBX refused the credentials."""


class AmiConnectionLost(AmiError):
    """The connection dropped after the action was sent and before its response: its outcome is unknown.

    For an Originate the PBX may have queued the call: reconcile by ChannelId (``channels()``) before any retry.
    """


class AmiActionTimeout(AmiError):
    """No response within the action's timeout (the connection is still up); the outcome is unknown."""


class AmiActionFailed(AmiError):
    """The PBX answered ``Response: Error`` (or anything but Success)."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.action = action
        self.response = response
        self.message = response.get("Message") or ""
        super().__init__(f"AMI {action} failed: {self.message or response.response}")


# ---------------------------------------------------------------------------------------------- panoramisk layer
class _AmiAction(Action):  # panoramisk is untyped (Any)
    """A panoramisk Action whose wire form is checked up front (CR/LF injection) and that completes per AMI lists.

    ``responses`` (panoramisk's name) collects the response and, for a list, its events; the future gets them all.
    """

    def __init__(self, name: str, headers: Mapping[str, str | Iterable[str]], complete_event: str | None) -> None:
        fields: dict[str, str | list[str]] = {"Action": name}
        for key, value in headers.items():
            fields[key] = value if isinstance(value, str) else list(value)
        super().__init__(fields)  # adds a generated ActionID unless one is given
        self.name = name
        self.complete_event = complete_event
        pairs = [(k, v) for k, v in self.items() if k.lower() not in ("action", "actionid")]
        self.wire: bytes = encode_action(name, pairs, action_id=self.action_id)  # ValueError before anything is sent

    def __str__(self) -> str:  # what panoramisk's AMIProtocol.send writes
        return self.wire.decode("utf-8")

    def __repr__(self) -> str:  # never the headers: a Login carries the secret
        return f"<AmiAction {self.name} ActionID={self.action_id}>"

    def takes(self, message: AmiMessage) -> bool:
        """Whether ``message`` (carrying this ActionID) belongs to this action: its response, or an item of its list."""
        if message.is_response:
            return not self.responses
        return bool(self.responses) and self._is_list()

    def _is_list(self) -> bool:
        first: AmiMessage = self.responses[0]
        return first.response == "Success" and (first.get("EventList") or "").lower() == "start"

    def add_message(self, message: AmiMessage) -> bool:
        """Record ``message``; True when the action is complete (its future then holds every message)."""
        self.responses.append(message)
        if not self._is_list():
            done = True
        elif self.complete_event is not None:
            done = message.event == self.complete_event
        else:
            done = message.is_event and (message.get("EventList") or "").lower() == "complete"
        if done and not self.future.done():
            self.future.set_result(list(self.responses))
        return done


class _AmiProtocol(AMIProtocol):
    """panoramisk's protocol reading with :class:`AmiParser`; never re-queues an action on connection loss."""

    responses: dict[str, _AmiAction]

    def __init__(self, on_event: Callable[[AmiMessage], None]) -> None:
        super().__init__()
        self.on_event = on_event
        self.parser = AmiParser()
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"  # used by AMIProtocol.send; actions are already encoded (and checked) as UTF-8

    def data_received(self, data: bytes) -> None:
        for message in self.parser.feed(data):
            self.handle_message(message)

    def handle_message(self, message: AmiMessage) -> None:
        action_id = message.action_id
        action = self.responses.get(action_id) if action_id is not None else None
        if action is not None and action.takes(message):
            if action.add_message(message):
                self.responses.pop(action_id, None)  # type: ignore[arg-type]
        elif message.is_event:
            self.on_event(message)
        else:
            log.debug("ami_unsolicited_response", response=message.response, action_id=action_id)

    def fail_pending(self, reason: str) -> None:
        """Fail every action still waiting for its response; none is kept for a re-send."""
        pending, self.responses = self.responses, {}
        for action in {id(a): a for a in pending.values()}.values():
            if not action.future.done():
                action.future.set_exception(AmiConnectionLost(f"AMI {action.name}: {reason}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost_reason is None:
            self.lost_reason = f"connection lost: {exc}" if exc else "connection closed by the PBX"
        self.closed = True
        self.fail_pending(self.lost_reason)
        self.lost.set()

    def close(self, reason: str = "connection closed by the client", *, abort: bool = False) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
        self.fail_pending(self.lost_reason)
        if not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        self.lost.set()


class _Manager(Manager):
    """panoramisk's Manager as the connection layer, its automatic behaviours switched off.

    ``connect()`` opens the TCP connection with our protocol factory and ``close()`` closes it; the login,
    the keepalive, the reconnect with backoff and the handling of pending actions are the client's.
    """

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        """The client takes the protocol from the awaited ``connect()`` task and logs in itself."""

    def connection_lost(self, exc: Exception | None) -> None:
        """No fixed-delay reconnect here: the client's loop reconnects with backoff."""

    def ping(self) -> None:
        """The client pings (sub-second intervals, answer timeout)."""

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never re-send actions after a reconnect."""
        self.awaiting_actions.clear()


# ---------------------------------------------------------------------------------------------- client
class AmiClient:
    """One robust AMI connection to one PBX: login, event filters, keepalive, reconnect with backoff.

    ``state``: ``connecting`` (a connection/login attempt is under way), ``connected``, ``disconnected``
    (waiting before the next attempt), ``login_failed`` (credentials refused; retried every ~``backoff_max``),
    ``stopped``. ``on_connected`` is awaited after every login (actions such as :meth:`channels` work inside it),
    before the state becomes ``connected``; if it raises, the connection is dropped and tried again later.
    :meth:`originate` needs ``connected``; :meth:`action` works as soon as the session is logged in.
    """

    def __init__(
        self,
        server: AmiServer,
        on_event: Callable[[AmiMessage], None],
        *,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        event_filters: Sequence[str] = DEFAULT_EVENT_FILTERS,
        connect_timeout: float = 5.0,
    ) -> None:
        self.server = server
        self._on_event = on_event
        self._on_connected = on_connected
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = max(backoff_max, backoff_initial)
        self._event_filters = tuple(event_filters)
        self._connect_timeout = connect_timeout
        self._log = log.bind(ami=server.name, host=server.host, port=server.port, user=server.username)

        self.state = "disconnected"
        self.version: str | None = None  # Asterisk version (CoreSettings AsteriskVersion)
        self.ami_version: str | None = None  # AMI protocol version from the banner
        self.reconnects = 0  # successful connections after the first one
        self.last_error: str | None = None
        self.last_event_at: float | None = None  # time.monotonic() of the last event
        self.events_received = 0

        self._manager: _Manager | None = None
        self._protocol: _AmiProtocol | None = None  # logged in and usable for actions
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ever_connected = False
        self._state_changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    @property
    def connected(self) -> bool:
        return self.state == "connected"

    async def start(self) -> None:
        """Start the connect loop in the background and return at once (see :meth:`wait_connected`)."""
        if self._task is not None:
            raise RuntimeError("AmiClient already started")
        self._stopping = False
        s = self.server
        self._manager = _Manager(host=s.host, port=s.port, loop=asyncio.get_running_loop(),
                                 protocol_factory=lambda: _AmiProtocol(self._dispatch))
        self._task = asyncio.create_task(self._run(), name=f"ami-{s.name}")

    async def stop(self) -> None:
        """Log off if connected, close the connection and end the background task."""
        self._stopping = True
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            with contextlib.suppress(AmiError):
                await self._request(protocol, "Logoff", {}, response_timeout=min(2.0, self._ping_timeout))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._manager is not None:
            self._manager.close()  # closes a connection still being set up, if any
        self._set_state("stopped")
        self._log.info("ami_stopped")

    async def wait_connected(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until ``connected`` (True), or the timeout / ``stop()`` (False)."""
        await self.wait_for_state("connected", "stopped", timeout=timeout)
        return self.connected

    async def wait_for_state(self, *states: str, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the state is one of ``states``; False on timeout."""

        async def _wait() -> None:
            while self.state not in states:
                changed = self._state_changed
                await changed.wait()

        try:
            await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            changed, self._state_changed = self._state_changed, asyncio.Event()
            changed.set()

    # ------------------------------------------------------------------ actions
    async def action(
        self,
        name: str,
        headers: Mapping[str, str | Iterable[str]] | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109  # per action: a late response must not hang the caller
        complete_event: str | None = None,
    ) -> list[AmiMessage]:
        """Send one action; return its response, followed for a list action by the list's events.

        A response with ``EventList: start`` (CoreShowChannels, Status, ShowDialPlan, PJSIPShowEndpoint ...)
        collects the events with the action's ActionID up to ``complete_event`` (default: the event with
        ``EventList: Complete``, e.g. CoreShowChannelsComplete); those events do not go to ``on_event``.
        Raises AmiNotConnected (not sent), AmiActionFailed (Response: Error), AmiConnectionLost, AmiActionTimeout,
        ValueError (CR/LF in a header).
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AmiNotConnected(f"AMI {self.server.name} is not connected ({self.state})")
        return await self._request(protocol, name, headers or {}, response_timeout=timeout,
                                   complete_event=complete_event)

    async def channels(self, *, timeout: float = 10.0) -> list[AmiMessage]:  # noqa: ASYNC109
        """The PBX's channels (``CoreShowChannel`` events: Channel, Uniqueid, Linkedid, ChannelStateDesc ...)."""
        messages = await self.action("CoreShowChannels", timeout=timeout, complete_event="CoreShowChannelsComplete")
        return [m for m in messages if m.event == "CoreShowChannel"]

    async def db_get(self, family: str, key: str, *, timeout: float = 5.0) -> str | None:  # noqa: ASYNC109
        """An AstDB value (``DBGet``: write class ``reporting`` or ``system``), None if there is no such entry."""
        try:
            messages = await self.action("DBGet", {"Family": family, "Key": key}, timeout=timeout,
                                         complete_event="DBGetComplete")
        except AmiActionFailed as exc:
            if exc.message == "Database entry not found":
                return None
            raise
        return next((m.get("Val") or "" for m in messages if m.event == "DBGetResponse"), None)

    async def originate(
        self,
        *,
        action_id: str,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        timeout_ms: int,
        channel_id: str,
        other_channel_id: str | None = None,
        caller_id: str | None = None,
        account: str | None = None,
        variables: Mapping[str, str] = {},  # read only
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Send one async Originate; return when Asterisk has queued it (``Response: Success``).

        The outcome arrives later as an ``OriginateResponse`` event with this ``action_id`` (through
        ``on_event``, possibly before this coroutine has returned). Never retried by this client.
        Raises AmiNotConnected (not sent), AmiActionFailed (refused, e.g. "Extension does not exist."),
        AmiConnectionLost / AmiActionTimeout (sent, outcome unknown: reconcile by ``channel_id``), ValueError.
        """
        headers: dict[str, str | list[str]] = {
            "ActionID": action_id, "Channel": channel, "Context": context, "Exten": exten,
            "Priority": str(priority), "Timeout": str(int(timeout_ms)), "ChannelId": channel_id, "Async": "true",
        }
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        if other_channel_id is not None:
            headers["OtherChannelId"] = other_channel_id
        if caller_id is not None:
            headers["CallerID"] = caller_id
        if account is not None:
            headers["Account"] = account
        if variables:
            headers["Variable"] = [_variable(k, v) for k, v in variables.items()]
        protocol = self._protocol
        if self.state != "connected" or protocol is None or protocol.closed:
            raise AmiNotConnected(f"AMI {self.server.name} is not connected ({self.state}): Originate not sent")
        await self._request(protocol, "Originate", headers, response_timeout=timeout)

    async def _request(
        self,
        protocol: _AmiProtocol,
        name: str,
        headers: Mapping[str, str | Iterable[str]],
        *,
        response_timeout: float,
        complete_event: str | None = None,
    ) -> list[AmiMessage]:
        action = _AmiAction(name, headers, complete_event)
        action_id: str = action.action_id
        if protocol.closed:
            raise AmiNotConnected(f"AMI {self.server.name}: connection closed, {name} not sent")
        if action_id in protocol.responses:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        future = protocol.send(action)  # panoramisk: registers the action under its ActionID and writes it
        try:
            messages: list[AmiMessage] = await asyncio.wait_for(future, response_timeout)
        except TimeoutError:
            raise AmiActionTimeout(f"AMI {name}: no response within {response_timeout:g} s") from None
        finally:
            if protocol.responses.get(action_id) is action:
                del protocol.responses[action_id]
        if messages[0].response not in _OK_RESPONSES:
            raise AmiActionFailed(name, messages[0])
        return messages

    # ------------------------------------------------------------------ events
    def _dispatch(self, message: AmiMessage) -> None:
        self.last_event_at = time.monotonic()
        self.events_received += 1
        try:
            self._on_event(message)
        except Exception:
            self._log.exception("ami_event_callback_failed", ami_event=message.event)

    # ------------------------------------------------------------------ connect loop
    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._stopping:
            self._set_state("connecting")
            try:
                await self._session()
            except AmiLoginFailed as exc:  # the credentials may get fixed in manager.conf: retry, slowly
                self.last_error = str(exc)
                wait, state = self._backoff_max, "login_failed"
            except (OSError, TimeoutError, AmiError) as exc:
                self.last_error = _describe(exc)
                wait, state = delay, "disconnected"
            except Exception as exc:  # on_connected raised, or a bug: keep the loop alive
                self.last_error = _describe(exc)
                self._log.exception("ami_session_failed", error=self.last_error)
                wait, state = delay, "disconnected"
            else:  # a connected session ended: the backoff starts over
                wait, state = self._backoff_initial, "disconnected"
            if self._stopping:
                break
            delay = min(wait * 2, self._backoff_max)
            wait *= random.uniform(1.0, 1.1)
            self._set_state(state)
            if state == "login_failed":
                self._log.error("ami_login_failed", error=self.last_error, retry_in=round(wait, 3))
            else:
                self._log.warning("ami_disconnected", error=self.last_error, retry_in=round(wait, 3))
            await asyncio.sleep(wait)

    async def _session(self) -> None:
        """One connection: connect, log in, set up, on_connected, then serve until the connection is lost."""
        assert self._manager is not None
        s = self.server
        _transport, protocol = await asyncio.wait_for(self._manager.connect(), self._connect_timeout)
        self._manager.protocol = protocol
        keepalive: asyncio.Task[None] | None = None
        try:
            await self._login(protocol)
            self._protocol = protocol
            keepalive = asyncio.create_task(self._keepalive(protocol), name=f"ami-{s.name}-ping")
            await self._setup(protocol)
            if self._on_connected is not None:
                await self._on_connected()
            if protocol.closed:
                raise AmiConnectionLost(protocol.lost_reason or "connection lost")
            if self._ever_connected:
                self.reconnects += 1
            self._ever_connected = True
            self.last_error = None
            self._set_state("connected")
            self._log.info("ami_connected", version=self.version, ami_version=self.ami_version,
                           reconnects=self.reconnects)
            await protocol.lost.wait()
            self.last_error = protocol.lost_reason
        finally:
            self._protocol = None
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            protocol.close()

    async def _login(self, protocol: _AmiProtocol) -> None:
        s = self.server
        try:
            await self._request(protocol, "Login", {"Username": s.username, "Secret": s.secret, "Events": "on"},
                                response_timeout=self._connect_timeout)
        except AmiActionFailed as exc:
            raise AmiLoginFailed(
                f"AMI login failed for user {s.username} at {s.host}:{s.port}: {exc.message or exc.response.response}"
            ) from None
        self.ami_version = protocol.parser.version

    async def _setup(self, protocol: _AmiProtocol) -> None:
        self.version = await self._asterisk_version(protocol)
        for regex in self._event_filters:
            try:
                await self._request(protocol, "Filter", {"Operation": "Add", "Filter": regex},
                                    response_timeout=self._connect_timeout)
            except AmiActionFailed as exc:
                # A least-privilege AMI user may not send Filter: the eventfilter lines of its
                # manager.conf entry (asterisk/manager_callswitch.conf) do the filtering then.
                self._log.info("ami_filter_not_permitted", error=str(exc),
                               hint="relying on the eventfilter lines of the AMI user in manager.conf")
                break

    async def _asterisk_version(self, protocol: _AmiProtocol) -> str | None:
        """CoreSettings ``AsteriskVersion``; else the output of ``core show version``; else None."""
        try:
            (resp, *_) = await self._request(protocol, "CoreSettings", {}, response_timeout=self._connect_timeout)
            if resp.get("AsteriskVersion"):
                return resp.get("AsteriskVersion")
        except AmiActionFailed:
            pass
        try:
            (resp, *_) = await self._request(protocol, "Command", {"Command": "core show version"},
                                             response_timeout=self._connect_timeout)
        except AmiActionFailed as exc:
            self._log.warning("ami_version_unknown", error=str(exc))
            return None
        for line in resp.getall("Output") or [resp.content]:
            match = _VERSION_IN_OUTPUT.search(line)
            if match:
                return match.group(1)
        return None

    async def _keepalive(self, protocol: _AmiProtocol) -> None:
        """Ping every ``ping_interval``; no answer within ``ping_timeout`` -> the connection is dead."""
        while not protocol.closed:
            await asyncio.sleep(self._ping_interval)
            try:
                await self._request(protocol, "Ping", {}, response_timeout=self._ping_timeout)
            except AmiActionTimeout:
                reason = f"no answer to Ping within {self._ping_timeout:g} s"
                self._log.warning("ami_keepalive_failed", error=reason)
                protocol.close(reason, abort=True)
                return
            except AmiActionFailed as exc:  # the PBX answered: the connection is alive
                self._log.warning("ami_ping_refused", error=str(exc))
            except (AmiConnectionLost, AmiNotConnected):
                return


def _variable(name: str, value: str) -> str:
    """``NAME=value`` for an Originate ``Variable`` header.

    Asterisk splits a Variable header at commas, so a comma in a value would inject another variable.
    """
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"invalid channel variable name: {name!r}")
    if "," in value:
        raise ValueError(f"channel variable {name} must not contain ',' (Asterisk would split it)")
    return f"{name}={value}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, TimeoutError) and not text:
        return "connect timed out"
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, AmiError) else text
