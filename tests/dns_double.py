"""An in-process DNS server on 127.0.0.1 (UDP) for tests: answers TXT queries from a dict.

It stands in for the internet's DNS at the protocol boundary, as the LiveKit double does for
LiveKit: Parley's resolver code (branding/dns.py, dnspython) runs unchanged against it.
Unknown names answer NXDOMAIN; `down()` makes it drop queries (a timeout for the client).
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsDouble:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.answering = True
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def start(self) -> DnsDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def set_txt(self, name: str, *values: str) -> None:
        self.records[name.lower().rstrip(".")] = list(values)

    def reset(self) -> None:
        self.records.clear()
        self.queries.clear()
        self.answering = True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 -- not DNS: ignore, as a server would
                continue
            if not self.answering:
                continue
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            self.queries.append(name)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                quoted = [f'"{v}"' for v in values]
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, quoted
                    )  # fmt: skip
                )
            try:
                self._sock.sendto(response.to_wire(), peer)
            except OSError:
                continue
