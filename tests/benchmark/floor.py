"""The floor: the least an auth layer can cost as a mitmproxy script.

    mitmdump -s tests/benchmark/floor.py --mode reverse:http://127.0.0.1:PORT

One handler: the bench's key in Authorization passes with the header stripped;
anything else gets a bare 401. No settings, no explanation, no log line. What
mitmproxy charges for loading any `-s` script and calling one handler per
request is in this figure; the gate is measured against it (just bench).
"""

from mitmproxy import http

# The bench's key (benchmark/common.py API_KEY), spelled out: a script imports nothing of the bench.
EXPECTED = "Bearer sk-bench0123456789abcdef0123456789a"
_DENIED = {"content-type": "application/json"}


def requestheaders(flow: http.HTTPFlow) -> None:
    headers = flow.request.headers
    if headers.get("authorization") == EXPECTED:
        del headers["authorization"]
    else:
        flow.response = http.Response.make(401, b'{"error":"invalid api key"}', _DENIED)


# mitmproxy looks up every event's handler on the script module, for every event of every
# flow; on Python 3.11 a name a module lacks costs a formatted AttributeError each time
# (about 300k instructions per request in all). None is the cheap "no handler", as the
# gate's auth.py answers too. (add_log left out: mitmproxy warns about a module that has it.)
request = responseheaders = response = error = update = None
client_connected = client_disconnected = server_connect = server_connected = server_disconnected = None
next_layer = None
