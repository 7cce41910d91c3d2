"""A one-answer OpenAI-compatible chat server on loopback, for
build-static.sh's live runs in the chroot. Every completion asks the
runtime to count the context's lines and submit the number.

    python3 loopback_model.py PORT_FILE [CERT KEY]

Binds 127.0.0.1 on a free port and writes the port to PORT_FILE; with a
certificate and key it speaks HTTPS. It exits after a minute without a
request, so a check that dies cannot leave it running."""

import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

REPLY = "```rhai\nsubmit(context.line_count());\n```"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({
            "choices": [{"message": {"role": "assistant", "content": REPLY},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) == 4:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
server.timeout = 60
server.handle_timeout = lambda: sys.exit(0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
# Written whole, then renamed: the reader never sees half a port.
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    server.handle_request()
