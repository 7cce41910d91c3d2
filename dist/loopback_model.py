"""A one-answer OpenAI-compatible chat server on loopback, for
build-static.sh's live run in the chroot. Every completion asks the
runtime to count the context's lines and submit the number."""

import json
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
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
# Serves until killed, or until a minute passes without a request.
server.timeout = 60
server.handle_timeout = lambda: sys.exit(0)
while True:
    server.handle_request()
