"""A small WSGI app served by uWSGI for the uwsgi and scgi route actions' tests."""
import hashlib
import json
import time


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/big':
        n = int(environ.get('QUERY_STRING') or 5 * 1024 * 1024)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(n))])
        chunk = b'0123456789abcdef' * 4096
        return (chunk[: min(len(chunk), n - i)] for i in range(0, n, len(chunk)))
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (b'part %d\n' % i for i in range(1000))
    if path == '/sleep':
        time.sleep(5)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'late']
    if path == '/status':
        start_response('404 Nowhere', [('Content-Type', 'text/plain'), ('X-Why', 'missing'), ('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2')])
        return [b'not here']
    body = environ['wsgi.input'].read()
    keys = {k: v for k, v in environ.items() if isinstance(v, str)}
    out = json.dumps({'environ': keys, 'length': len(body), 'md5': hashlib.md5(body).hexdigest()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(out)))])
    return [out]
