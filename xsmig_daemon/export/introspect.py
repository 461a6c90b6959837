"""The ``introspect`` source: the xsmig mock's full state, read while the daemon is frozen.

Protocol in docs/introspect.md. The exporter sends ``CONTROL introspect freeze <ms> <mode>``, then
keeps ``window`` pipelined ``CONTROL introspect read`` requests in flight; each reply is the
next piece of a migration stream the daemon encodes from its own state, an empty reply ends
it. Every piece is decoded as it arrives, converted for the target like an image file (the
same ``imagestage.ImageStage``), and written to the output, where the ImageWriter
validates each record for the target as it is written (a bad stream fails at its first bad
record, before anything reaches a file). Then
``CONTROL introspect thaw``. On any failure the connection is simply closed: the daemon
thaws when its freezing connection goes away, and at the deadline in any case.

``auto`` picks this source when ``CONTROL introspect probe`` is answered; a real xenstored
answers EINVAL (unknown CONTROL command).
"""

from __future__ import annotations

from collections import deque

import trio

from ..client import ClientError, Connection, PendingReply, Request, XenstoreError, connect
from ..client.connection import connect_unix_stream, strings_payload
from ..client.errors import ClientProtocolError, ClientTimeoutError, DaemonGoneError
from ..defaults import FREEZE_DEADLINE
from ..image.errors import ImageError
from ..wire.framing import MessageDecoder, ProtocolError, encode_message
from ..wire.introspect import FREEZE_MODES
from ..wire.ops import Op
from .errors import SourceError
from .imagestage import ImageStage
from .source import ExportPlan, RecordOutput, SourceReport

_PROBE = b"introspect\0probe\0"
_READ = Request(Op.CONTROL, b"introspect\0read\0")
#: Pipelined reads: 64 x 4 KiB in flight keeps the daemon encoding while we decode.
DEFAULT_WINDOW = 64
#: Longest freeze asked for, in seconds (the daemon thaws by itself after it).
DEFAULT_FREEZE_DEADLINE = FREEZE_DEADLINE

FIDELITY_NOTES = (
    "socket connections are recorded with the daemon's fd numbers; only a successor that "
    "inherits those fds (a live update) can resume them",
)


async def answers_introspect(socket_path: str, timeout: float) -> bool:
    """True if the daemon at ``socket_path`` understands the introspection probe.

    The probe waits for the reply, then half-closes its connection and waits for the daemon
    to close it too: the daemon has then forgotten it, so it cannot appear in an image taken
    right after. (Half-closing *before* the reply arrives makes C xenstored drop the
    connection with the reply unsent.)
    """
    stream = await connect_unix_stream(socket_path, timeout)
    decoder = MessageDecoder()
    reply = None
    try:
        async with stream:
            with trio.fail_after(timeout):
                await stream.send_all(encode_message(Op.CONTROL, 1, 0, _PROBE))
                while reply is None:
                    chunk = await stream.receive_some()
                    if not chunk:
                        break
                    decoder.feed(bytes(chunk))
                    reply = decoder.next_message()
                if reply is not None:
                    await stream.send_eof()
                    while await stream.receive_some():
                        pass
    except trio.TooSlowError:
        raise ClientTimeoutError(
            f"{socket_path}: no answer to the probe in {timeout:g} s"
        ) from None
    except ProtocolError as exc:
        raise ClientProtocolError(f"{socket_path}: {exc}") from None
    except (trio.BrokenResourceError, OSError) as exc:
        raise DaemonGoneError(f"{socket_path}: connection lost during the probe ({exc})") from None
    if reply is None:
        raise DaemonGoneError(f"{socket_path}: closed the connection without answering the probe")
    return reply.op == Op.CONTROL


class IntrospectSource:
    kind = "introspect"

    def __init__(
        self,
        socket_path: str,
        *,
        timeout: float,
        freeze_deadline: float = DEFAULT_FREEZE_DEADLINE,
        freeze_mode: str = FREEZE_MODES[0],
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if freeze_mode not in FREEZE_MODES:
            raise ValueError(f"freeze mode {freeze_mode!r}")
        self.freeze_mode = freeze_mode
        self.location = socket_path
        self.timeout = timeout
        self.freeze_deadline = freeze_deadline
        self.window = window

    async def export(self, plan: ExportPlan, out: RecordOutput) -> SourceReport:
        report = SourceReport(self.kind, self.location)
        stage = ImageStage(plan, report, check=None, own_fds=False)
        try:
            async with connect(self.location, timeout=self.timeout) as xs:
                await self._freeze(xs.conn)
                await self._read_all(xs.conn, stage, out)
                duration = await xs.control("introspect", "thaw")
        except XenstoreError as exc:
            if exc.name == "EAGAIN":
                raise SourceError(
                    f"introspect {self.location}: the daemon ended the freeze at its "
                    f"{self.freeze_deadline:g} s deadline after {stage.offset} bytes; "
                    "raise the freeze deadline (--freeze-deadline, xenstored.freeze_deadline)"
                ) from None
            raise SourceError(f"introspect {self.location}: {exc}") from None
        except ClientError as exc:
            raise SourceError(f"introspect {self.location}: {exc}") from None
        except ImageError as exc:
            raise SourceError(f"introspect {self.location}: invalid image: {exc}") from None
        report.freeze_duration = float(duration.rstrip(b"\0"))
        report.fidelity_notes.extend(FIDELITY_NOTES)
        report.fidelity_notes.extend(stage.loss_notes())
        report.left_to_toolstack = stage.left_to_toolstack
        return report

    async def _freeze(self, conn: Connection) -> None:
        """Freeze the daemon. A ``capture`` freeze encodes the whole image before it answers
        (1,000,000 nodes: longer than a request timeout under load), so the reply may take
        as long as the freeze may last: the deadline bounds it, not the request timeout."""
        deadline_ms = max(1, round(self.freeze_deadline * 1000))
        args = ("introspect", "freeze", str(deadline_ms), self.freeze_mode)
        pending = await conn.submit(Request(Op.CONTROL, strings_payload(args)))
        await pending.payload(timeout=self.freeze_deadline + self.timeout)

    async def _read_all(self, conn: Connection, stage: ImageStage, out: RecordOutput) -> None:
        pending: deque[PendingReply] = deque(await conn.submit_many([_READ] * self.window))
        more = True
        while pending:
            piece = await pending.popleft().payload()
            if not piece:
                more = False
            elif more and len(pending) <= self.window // 2:
                pending.extend(await conn.submit_many([_READ] * (self.window - len(pending))))
            for record in stage.feed(piece):
                await out.write(record)
        stage.close()
