# A tiny web app that counts its visitors in Redis, using only Python's standard library:
# it speaks Redis's wire protocol (RESP) over a plain socket.
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer


def incr(key: str) -> int:
    with socket.create_connection(("redis", 6379), timeout=2) as s:
        k = key.encode()
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k))
        reply = s.recv(64)  # ":<number>\r\n"
        return int(reply[1:reply.index(b"\r\n")])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Hello from Compose! This page has been seen {incr('hits')} times.\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("", 8000), Handler).serve_forever()
