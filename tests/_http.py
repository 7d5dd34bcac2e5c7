"""A small HTTP server on 127.0.0.1 for download tests (no network): ranges, 503s, cut-off bodies."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import shapely


class Server:
    """Serves ``files`` ({path: bytes}); ``fail`` (503s to send first), ``cut`` (bytes after which a body
    breaks off, once), ``md5`` (override of a published sum), and a request log."""

    def __init__(self, files):
        self.files, self.fail, self.cut, self.log = files, 0, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                server.log.append((self.path, self.headers.get("Range")))
                if server.fail > 0:
                    server.fail -= 1
                    self.send_error(503, "busy")
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "not here")
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "range")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if server.cut is not None and self.path.endswith(".pbf"):
                    data, server.cut = data[: server.cut], None
                    self.wfile.write(data)
                    self.wfile.flush()
                    self.connection.shutdown(2)  # break off mid-body
                    return
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def mirror(body: bytes, box, name: str = "liechtenstein") -> Server:
    """A server with an index of one extract (``europe/<name>-latest.osm.pbf``, boundary ``box``) and its MD5."""
    srv = Server({})
    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": name, "name": name.title(),
                                           "urls": {"pbf": f"{srv.url}/europe/{name}-latest.osm.pbf"}},
         "geometry": shapely.geometry.mapping(shapely.box(*box))}]}
    srv.files = {"/index-v1.json": json.dumps(index).encode(),
                 f"/europe/{name}-latest.osm.pbf": body,
                 f"/europe/{name}-latest.osm.pbf.md5": (hashlib.md5(body).hexdigest() + "  x\n").encode()}
    return srv
