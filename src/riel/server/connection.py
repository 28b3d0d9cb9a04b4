"""One client connection: frames in, requests answered strictly in order, responses out.

Reading is an ``asyncio.Protocol`` feeding the sans-I/O ``FrameDecoder``; a single worker task per
connection handles requests one at a time (Kafka's ordering guarantee per connection). Reading pauses
while too many frames wait, so a client pipelining faster than we answer cannot grow our memory
without bound. A malformed frame closes this connection and nothing else.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from typing import Final

from riel.broker.router import Router
from riel.broker.sasl.session import SASL_AUTHENTICATE_KEY, SASL_HANDSHAKE_KEY, SaslSession
from riel.errors import ProtocolError
from riel.protocol.frames import FrameDecoder
from riel.protocol.headers import Request, decode_request, encode_response
from riel.protocol.primitives import ExternalBytes
from riel.server.limits import ConnectionLimits, Watchdog
from riel.server.tls_principal import CertificateError, principal_from_certificate
from riel.storage.partition_log import FileSlice

log = logging.getLogger(__name__)

# Reading from a client pauses while this much waits unhandled (on top of at most one frame being
# assembled), so a client that pipelines faster than we answer cannot grow our memory without bound.
MAX_QUEUED_FRAMES: Final = 32
MAX_QUEUED_BYTES: Final = 32 * 1024 * 1024
MAX_PIPELINED_REQUESTS: Final = 8
PRODUCE_API_KEY: Final = 0
FETCH_API_KEY: Final = 1
# Largest frame accepted before SASL authentication (Kafka's sasl.server.max.receive.size).
SASL_MAX_RECEIVE_SIZE: Final = 512 * 1024


class KafkaConnection(asyncio.Protocol):
    def __init__(
        self,
        router: Router,
        max_frame_size: int,
        connections: set[KafkaConnection],
        listener: str = "PLAINTEXT",
        sasl: SaslSession | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._router = router
        # Connection counts, idle timeout and frame deadline; None: no limits (in-process use).
        self._limits = limits
        self._admitted_ip: str | None = None
        self._watchdog: Watchdog | None = None
        # Reading stops while too much waits (backpressure) or while a quota throttles us (muted).
        self._backpressure = False
        self._muted_until = 0.0
        self._unmuted = asyncio.Event()
        self._unmuted.set()
        self._unmute_timer: asyncio.TimerHandle | None = None
        self._max_frame_size = max_frame_size
        self._decoder = FrameDecoder(max_frame_size if sasl is None else SASL_MAX_RECEIVE_SIZE)
        # On a SASL listener: the exchange that must succeed before any other API is served.
        self._sasl = sasl
        self.listener = listener
        self.principal = "User:ANONYMOUS"
        self._connections = connections
        self._frames: collections.deque[memoryview] = collections.deque()
        self._frame_ready = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._transport: asyncio.Transport | None = None
        self._worker: asyncio.Task[None] | None = None
        # Responses in request order; bounded, so pipelined produces cannot pile up without limit.
        self._outbox: asyncio.Queue[asyncio.Task[list[bytes | bytearray | ExternalBytes] | None]] = (
            asyncio.Queue(MAX_PIPELINED_REQUESTS)
        )
        self._reading_paused = False
        self._in_flight = 0
        self._queued_bytes = 0
        self._closed = False
        self.peer = "?"
        self.client_host = ""

    # --- asyncio.Protocol callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.client_host = f"/{peer[0]}" if peer else ""  # Kafka reports member hosts as "/1.2.3.4"
        if self._sasl is None:  # on SASL_SSL the SASL login names the client, as in Kafka
            self.principal = _certificate_principal(transport) or self.principal
        if self._limits is not None:
            ip = str(peer[0]) if peer else "?"
            refusal = self._limits.admit(ip)
            if refusal is not None:  # like Kafka: closed as soon as accepted, nothing read or sent
                self._closed = True
                self._limits.cut_log.cut(self.peer, refusal, "refused")
                transport.abort()
                return
            self._admitted_ip = ip
            config = self._limits.config
            self._watchdog = Watchdog(
                asyncio.get_running_loop(),
                config.connections_max_idle_ms,
                config.frame_deadline_ms,
                self._expire,
                lambda: bool(self._frames) or self._in_flight > 0,
                lambda: self._reading_paused,
            )
            self._watchdog.start()
        self._connections.add(self)
        self._router.ctx.stats.connections_opened += 1
        self._worker = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._decoder.receive_data(data)
            while (frame := self._decoder.next_frame()) is not None:
                self._frames.append(frame)
                self._queued_bytes += frame.nbytes
        except ProtocolError as exc:
            self._abort(f"malformed frame: {exc}")
            return
        if self._watchdog is not None:
            self._watchdog.received(self._decoder.buffered > 0, bool(self._frames))
        if self._frames:
            self._frame_ready.set()
        if len(self._frames) >= MAX_QUEUED_FRAMES or self._queued_bytes >= MAX_QUEUED_BYTES:
            self._backpressure = True
            self._sync_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._limits is not None and self._admitted_ip is not None:
            self._limits.release(self._admitted_ip)
            self._admitted_ip = None
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._unmute_timer is not None:
            self._unmute_timer.cancel()
        self._unmuted.set()
        if self in self._connections:
            self._connections.discard(self)
            self._router.ctx.stats.connections_closed += 1
        self._can_write.set()
        if self._worker is not None:
            self._worker.cancel()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- the worker ---------------------------------------------------------------------------
    async def _serve(self) -> None:
        sender = asyncio.get_running_loop().create_task(self._send_in_order())
        try:
            while not self._closed:
                if not self._frames:
                    self._frame_ready.clear()
                    await self._frame_ready.wait()
                    continue
                if not self._unmuted.is_set():  # throttled by a quota: no request is served meanwhile
                    await self._unmuted.wait()
                    continue
                frame = self._frames.popleft()
                self._queued_bytes -= frame.nbytes
                relieved = (
                    len(self._frames) < MAX_QUEUED_FRAMES // 2 and self._queued_bytes < MAX_QUEUED_BYTES // 2
                )
                if self._backpressure and relieved:
                    self._backpressure = False
                    self._sync_reading()
                if self._sasl is not None and not self._sasl.authenticated:
                    await self._before_authentication(frame)
                    continue
                try:
                    request = decode_request(frame)
                except ProtocolError as exc:
                    self._abort(str(exc))
                    return
                request.client_host = self.client_host
                request.listener = self.listener
                request.principal = self.principal
                # Tasks start in creation order, so requests take effect in the order they arrived.
                task = asyncio.get_running_loop().create_task(self._respond(request))
                await self._outbox.put(task)
                if request.api_key != PRODUCE_API_KEY or self._produce_quota(request):
                    # Like Kafka, handle other requests one at a time per connection (a Heartbeat must
                    # not overtake the JoinGroup before it). Produce requests are pipelined: the next
                    # one is appended while this one waits for its fsync, and they share fsyncs
                    # (unless a quota applies: its throttle must stop the next request).
                    await asyncio.wait([task])
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("bug in the connection loop of %s; closing that connection", self.peer)
            self._abort("internal error")
        finally:
            sender.cancel()
            while not self._outbox.empty():
                self._outbox.get_nowait().cancel()

    async def _before_authentication(self, frame: memoryview) -> None:
        """One frame on a SASL listener before authentication: ApiVersions, SaslHandshake,
        SaslAuthenticate, or (after SaslHandshake v0) a bare SASL token. Anything else, or a failed
        authentication, ends the connection: after the failure response has been sent, when there is one."""
        sasl = self._sasl
        assert sasl is not None
        if sasl.failed:
            return  # the connection is closing; ignore what the client sent meanwhile
        if sasl.raw_tokens:
            reply = await sasl.raw_token(bytes(frame))
            if reply is None:
                self._abort(f"SASL authentication failed: {sasl.failure}")
                return
            await self._answer_now([len(reply).to_bytes(4, "big") + reply], sasl)
            return
        try:
            request = decode_request(frame)
        except ProtocolError as exc:
            self._abort(str(exc))
            return
        request.client_host = self.client_host
        request.listener = self.listener
        if request.api_key == SASL_HANDSHAKE_KEY:
            body = sasl.handshake(request.api_version, request.body["mechanism"])
        elif request.api_key == SASL_AUTHENTICATE_KEY:
            body = await sasl.authenticate(bytes(request.body["auth_bytes"]))
        elif sasl.admits(request.api_key):
            task = asyncio.get_running_loop().create_task(self._respond(request))
            await self._outbox.put(task)
            await asyncio.wait([task])
            return
        else:
            self._abort(sasl.refusal(request.api.name))  # Kafka closes the connection too
            return
        await self._answer_now(encode_response(request, body), sasl)

    async def _answer_now(self, chunks: list[bytes | bytearray | ExternalBytes], sasl: SaslSession) -> None:
        if sasl.authenticated:  # before the client can see the answer and send more
            self.principal = sasl.principal or self.principal
            self._decoder.max_frame_size = self._max_frame_size
        await self._outbox.put(_done(chunks))
        if sasl.failed:
            log.warning("closing connection from %s: SASL authentication failed: %s", self.peer, sasl.failure)
            await self._outbox.put(_done(CLOSE_AFTER_SENDING))

    async def _respond(self, request: Request) -> list[bytes | bytearray | ExternalBytes] | None:
        self._in_flight += 1
        try:
            body = await self._router.handle(request)
            if body is None:
                return None
            if request.api_key in (PRODUCE_API_KEY, FETCH_API_KEY) and body.get("throttle_time_ms", 0) > 0:
                self._mute(body["throttle_time_ms"])
            return encode_response(request, body)
        except ProtocolError as exc:
            self._abort(str(exc))
            return None
        except Exception:
            log.exception("bug while handling a request from %s; closing that connection", self.peer)
            self._abort("internal error")
            return None
        finally:
            self._in_flight -= 1

    # --- limits -------------------------------------------------------------------------------
    def _produce_quota(self, request: Request) -> bool:
        quotas = self._router.ctx.quotas
        return quotas is not None and quotas.limits_produce(request.client_id)

    def _sync_reading(self) -> None:
        """Read from the peer unless too much waits or a quota throttles it."""
        pause = self._backpressure or not self._unmuted.is_set()
        transport = self._transport
        if transport is None or self._closed or pause == self._reading_paused:
            return
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()
            if self._watchdog is not None:
                self._watchdog.suspend_frame_clock()
        self._reading_paused = pause

    def _mute(self, throttle_ms: int) -> None:
        """KIP-219: the response carries the throttle time; then nothing more is read or served from
        this connection for that long."""
        loop = asyncio.get_running_loop()
        until = loop.time() + throttle_ms / 1000
        if until <= self._muted_until:
            return
        self._muted_until = until
        self._unmuted.clear()
        if self._unmute_timer is not None:
            self._unmute_timer.cancel()
        self._unmute_timer = loop.call_at(until, self._unmute)
        self._sync_reading()

    def _unmute(self) -> None:
        self._unmute_timer = None
        self._unmuted.set()
        self._sync_reading()

    def _expire(self, kind: str, reason: str) -> None:
        self._abort(reason, kind)

    async def _send_in_order(self) -> None:
        try:
            while True:
                task = await self._outbox.get()
                chunks = await task
                if chunks is None:
                    continue
                if chunks is CLOSE_AFTER_SENDING:
                    self.close()  # after what is queued before it has been written
                    return
                try:
                    await self._send(chunks)
                finally:
                    for chunk in chunks:
                        if isinstance(chunk, FileSlice):
                            chunk.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never leave a client waiting on a response that a dead sender will not write.
            log.exception("bug while sending a response to %s; closing that connection", self.peer)
            self._abort("internal error")

    async def _send(self, chunks: list[bytes | bytearray | ExternalBytes]) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        for chunk in chunks:
            if isinstance(chunk, FileSlice):
                await self._send_file(transport, chunk)
            elif isinstance(chunk, ExternalBytes):
                raise TypeError(f"cannot send {type(chunk).__name__}")
            else:
                transport.write(chunk)
            if self._closed:
                return
        if self._watchdog is not None:
            self._watchdog.active()
        await self._can_write.wait()

    async def _send_file(self, transport: asyncio.Transport, chunk: FileSlice) -> None:
        if transport.get_extra_info("sslcontext") is not None:
            transport.write(chunk.read_bytes())
            return
        # Zero-copy: asyncio waits until what is queued before the slice is on the wire, then has the
        # kernel move file pages straight to the socket. It seeks the file object it is given; that is
        # harmless because segment files are only ever written with pwrite at explicit positions.
        with open(chunk.fd, "rb", buffering=0, closefd=False) as file:
            try:
                sent = await asyncio.get_running_loop().sendfile(transport, file, chunk.position, chunk.size)
            except (OSError, RuntimeError) as exc:
                self._abort(f"sending a segment slice failed: {exc}")
                return
        if sent != chunk.size:
            # The segment is shorter than the slice (truncated under us): the frame's size prefix
            # would lie and the client would lose its place in the stream, so end the connection.
            self._abort(f"segment slice ended after {sent} of {chunk.size} bytes")

    def _abort(self, reason: str, kind: str = "error") -> None:
        if self._closed:
            return
        if self._limits is not None:
            level = logging.INFO if kind == "idle" else logging.WARNING  # idle is routine, not trouble
            self._limits.cut_log.cut(self.peer, reason, kind, level)
        else:
            log.warning("closing connection from %s: %s", self.peer, reason)
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()


# Queued in place of a response: the connection closes once everything before it was sent.
CLOSE_AFTER_SENDING: Final[list[bytes | bytearray | ExternalBytes]] = []


def _certificate_principal(transport: asyncio.Transport) -> str | None:
    """On a TLS connection whose client presented a verified certificate, the principal Kafka's
    DEFAULT ssl.principal.mapping.rules give it ("User:" + the subject in RFC 2253 form); else None.
    asyncio calls connection_made only after the handshake, so the certificate is known by then."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject) or ssl_object.context.verify_mode == ssl.CERT_NONE:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return principal_from_certificate(der)
    except CertificateError as exc:  # the ssl module accepted it, so this should not happen
        log.warning("cannot read the subject of the client certificate: %s", exc)
        return None


def _done(
    chunks: list[bytes | bytearray | ExternalBytes],
) -> asyncio.Task[list[bytes | bytearray | ExternalBytes] | None]:
    async def ready() -> list[bytes | bytearray | ExternalBytes] | None:
        return chunks

    return asyncio.get_running_loop().create_task(ready())
