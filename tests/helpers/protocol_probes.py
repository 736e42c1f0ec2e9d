"""What the protocol tests (test_protocol_*.py, test_request_target.py; issue #20) share: the clients
that speak what the gate refuses (a TLS ClientHello, HTTP/2 over TLS and in prior knowledge, curl),
a WebSocket client, and `SwitchingUpstream`, an upstream that switches protocols and sends interim
answers, recording every byte each connection brings.

Everything on 127.0.0.1; every socket call bounded by a timeout; stop() ends every thread.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import wsproto
import wsproto.events
from wsproto import ConnectionType, WSConnection

from raw_http import IO_TIMEOUT

# hyper's answer to what its parser refuses (the notes' B1): status line, connection: close,
# content-length: 0, a 29-byte IMF-fixdate (hyper common/date.rs), nothing else.
HYPER_400 = re.compile(rb"HTTP/1\.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n"
                       rb"date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n\r\n")


def hyper_answer(status: int, reason: str) -> re.Pattern:
    return re.compile(HYPER_400.pattern.replace(rb"400 Bad Request", b"%d %s" % (status, reason.encode())))


def client_hello(alpn: tuple[str, ...] = ("h2", "http/1.1")) -> bytes:
    """The first flight of a real TLS client (Python's ssl, ALPN offered): a ClientHello."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def talk_until_closed(port: int, data: bytes, timeout: float = IO_TIMEOUT) -> tuple[bytes, str]:
    """Send `data`, read until the gate closes -> (every byte back, "closed" | "reset" | "timeout")."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except socket.timeout:
            return out, "timeout"
        except ConnectionResetError:
            return out, "reset"
    return out, "closed"


def tls_handshake(port: int, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> str:
    """A TLS client (Python's ssl) connecting: the error it ends with, or "handshake done"."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                return f"handshake done, ALPN {tls.selected_alpn_protocol()}"
        except (ssl.SSLError, OSError) as e:
            return f"{type(e).__name__}: {e}"


def h2_request(port: int, tls: bool, headers: list[tuple[str, str]], timeout: float = 5.0) -> dict:
    """One HTTP/2 request with the h2 library: over TLS (ALPN h2) or in prior knowledge (h2c).
    -> {"error": how it failed or None, "events": the h2 events received, "bytes": how many came}."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out: dict = {"error": None, "events": [], "bytes": 0}
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            try:
                sock = ctx.wrap_socket(sock, server_hostname="localhost")
            except (ssl.SSLError, OSError) as e:
                out["error"] = f"TLS: {type(e).__name__}: {e}"
                return out
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", "/v1/models"), (":scheme", "https" if tls else "http"),
                                (":authority", f"127.0.0.1:{port}"), *headers], end_stream=True)
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError as e:
                out["error"] = f"{type(e).__name__}: {e}"
                break
            if not data:
                out["error"] = out["error"] or "closed"
                break
            out["bytes"] += len(data)
            out["events"] += conn.receive_data(data)
            if any(isinstance(e, h2.events.StreamEnded) for e in out["events"]):
                break
    finally:
        sock.close()
    return out


def curl(*args: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """curl with a bounded run (-m), silent but for errors and the -w line."""
    return subprocess.run(["curl", "-sS", "-m", "5", *args], capture_output=True, text=True, timeout=timeout)


def websocket_exchange(port: int, target: str, headers: list[tuple[bytes, bytes]], message: str,
                       timeout: float = 5.0) -> dict:
    """A WebSocket client (wsproto) on a fresh connection: the handshake, then one text message.
    -> {"accepted": bool, "status": the status when refused, "reply": the echoed text or None}."""
    ws = WSConnection(ConnectionType.CLIENT)
    out: dict = {"accepted": False, "status": None, "reply": None}
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(ws.send(wsproto.events.Request(host=f"127.0.0.1:{port}", target=target,
                                                    extra_headers=headers)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, wsproto.events.AcceptConnection):
                    out["accepted"] = True
                    sock.sendall(ws.send(wsproto.events.TextMessage(data=message)))
                elif isinstance(event, wsproto.events.RejectConnection):
                    out["status"] = event.status_code
                    return out
                elif isinstance(event, wsproto.events.TextMessage):
                    out["reply"] = event.data
                    sock.sendall(ws.send(wsproto.events.CloseConnection(code=1000)))
                    return out
            if not data:
                return out
    return out


class SwitchingUpstream:
    """A raw upstream that records every byte each connection brings (`conns`) and answers:

    - a WebSocket handshake (Upgrade: websocket): 101 as RFC 6455 says, then echoes each text message;
    - any other request with an Upgrade header: 101 Switching Protocols, then reads (and records)
      whatever follows, answering nothing;
    - /early...: 103 Early Hints, then 100 Continue, then (after `interim_pause`) 200; /early-hang: the
      103 and then nothing;
    - /slow...: 200 after `slow` seconds;
    - anything else: 200 with a JSON body naming the request line.
    """

    def __init__(self, interim_pause: float = 0.3, slow: float = 1.5) -> None:
        self.interim_pause, self.slow = interim_pause, slow
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.conns: list[bytearray] = []
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def seen(self) -> bytes:
        return b"".join(bytes(c) for c in self.conns)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _recv(self, conn: socket.socket, record: bytearray) -> bytes | None:
        while not self.stopping.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            record += data
            return data or None
        return None

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        record = bytearray()
        self.conns.append(record)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = self._recv(conn, record)
                    if data is None:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                lower = head.lower()
                if b"\nupgrade: websocket" in lower:
                    self._websocket(conn, head + b"\r\n\r\n", record)
                    return
                if b"\nupgrade:" in lower:
                    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
                    while self._recv(conn, record) is not None:
                        pass  # a raw tunnel from here: whatever comes is recorded
                    return
                if b" /early" in line:
                    conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                    if b" /early-hang" in line:
                        while self._recv(conn, record) is not None:
                            pass
                        return
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    time.sleep(self.interim_pause)
                elif b" /slow" in line:
                    time.sleep(self.slow)
                body = b'{"upstream": "switching", "line": "%s"}' % line.replace(b'"', b"'")
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
        finally:
            conn.close()

    def _websocket(self, conn: socket.socket, head: bytes, record: bytearray) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(head)
        for event in ws.events():
            if isinstance(event, wsproto.events.Request):
                conn.sendall(ws.send(wsproto.events.AcceptConnection()))
        while (data := self._recv(conn, record)) is not None:
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, wsproto.events.TextMessage):
                    conn.sendall(ws.send(wsproto.events.TextMessage(data=f"echo: {event.data}")))
                elif isinstance(event, wsproto.events.CloseConnection):
                    conn.sendall(ws.send(event.response()))
                    return

    def stop(self) -> None:
        self.stopping.set()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        self.listener.close()

    def __enter__(self) -> SwitchingUpstream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

