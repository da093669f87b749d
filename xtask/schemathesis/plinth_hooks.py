"""schemathesis hooks for `cargo xtask openapi-check` (SCHEMATHESIS_HOOKS).

schemathesis sends each case with requests and reads the answer to its end.
This module adapts that client where it cannot speak to the servers as they
are; it changes no answer and no check.

- Control characters in header values: schemathesis generates them (it
  leaves out only CR and LF), but RFC 9110 section 5.5 allows none but tab in
  a field value, so such a request is not HTTP and the server's HTTP parser
  (hyper) drops it with a bare 400 before any route runs. Each is replaced
  with an inverted question mark, a byte a field value may hold (obs-text)
  and that none of the documented header patterns allows, so the value
  stays exactly as valid or invalid for its schema as it was and the case
  reaches the route.

- One connection per case (`Connection: close` unless the case sets its
  own, as the websocket handshake does): hyper closes a connection whose
  request body a handler left unread (a 401, 405 or 415 answered before
  the body), and a client reusing that connection races the close.
- application/zip request bodies (plugin packages): sent as the raw bytes
  schemathesis generates for `format: binary`; it has no serializer for the
  media type of its own.
- 101 Switching Protocols (the vendor's agent websocket): the connection then
  speaks the websocket protocol, but requests' pool would take it back as an
  idle HTTP/1.1 connection and send the next case down it, which the server
  can only drop. It is closed instead, so the next case opens a fresh one.
- text/event-stream (the host's operations stream): the stream stays open
  until the host shuts down, so reading it to the end never finishes. Its
  first event (sent at once) is read as the body and the connection is then
  closed, as an EventSource client that hangs up would.
"""

import re

import requests.adapters
import schemathesis
from schemathesis.transport.serialization import serialize_binary

# An event is at most this long; a stream that sends no blank line in it is
# cut here and its schema check fails on what was read.
FIRST_EVENT_LIMIT = 64 * 1024


_NOT_IN_A_FIELD_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


@schemathesis.hook
def before_call(context, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if isinstance(value, str):
            case.headers[name] = _NOT_IN_A_FIELD_VALUE.sub("\xbf", value)
    if case.headers is None:
        case.headers = {}
    if not any(name.lower() == "connection" for name in case.headers):
        case.headers["Connection"] = "close"


@schemathesis.serializer("application/zip")
def zip_body(ctx, value):
    return serialize_binary(value)


def _first_event(raw):
    read = b""
    while b"\n\n" not in read and len(read) < FIRST_EVENT_LIMIT:
        chunk = raw.read1(FIRST_EVENT_LIMIT)
        if not chunk:
            break
        read += chunk
    return read


_build_response = requests.adapters.HTTPAdapter.build_response


def _build_response_for_streams(self, req, resp):
    if resp.status == 101 and resp.connection is not None:
        resp.connection.close()
        return _build_response(self, req, resp)
    content_type = resp.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        return _build_response(self, req, resp)
    first = _first_event(resp)
    if resp.connection is not None:
        resp.connection.close()
    response = _build_response(self, req, resp)
    response._content = first
    response._content_consumed = True
    return response


requests.adapters.HTTPAdapter.build_response = _build_response_for_streams
