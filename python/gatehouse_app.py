"""What PEP 3333 asks of the worker around the application: loading it,
checking what it returns, `wsgi.file_wrapper` and `wsgi.errors`."""

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
from http import HTTPStatus

HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)


class Cancelled(Exception):
    """The client went away while the response was being produced."""


class AppError(Exception):
    """The application broke the WSGI contract; the message says how."""


class FileWrapper:
    """`wsgi.file_wrapper`: iterates a file-like in blocks.

    When it wraps a real file on disk the worker does not iterate it: it sends
    the front the file's path, offset and length and the front streams the file
    itself, so the bytes never pass through Python.
    """

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        blksize = self.blksize
        while True:
            data = read(blksize)
            if not data:
                return
            yield data


class ErrorStream:
    """`wsgi.errors`: text written here goes to the front's error log (via stderr)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, s):
        return self._stream.write(s)

    def writelines(self, seq):
        self._stream.writelines(seq)

    def flush(self):
        self._stream.flush()



def load_app(spec):
    """Load `module:callable`, `module:factory(args)`, `module`, or `file.py[:name]`."""
    target, name = spec, None
    colon = spec.rfind(":")
    if colon > 0 and "/" not in spec[colon + 1 :]:
        target, name = spec[:colon], spec[colon + 1 :]
    if target.endswith(".py") or os.sep in target:
        path = os.path.abspath(target)
        directory = os.path.dirname(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        module_name = os.path.splitext(os.path.basename(path))[0]
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError("cannot load %s: not a Python file" % path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return resolve_callable(module, name or "application", spec)


def release_free_memory():
    """Gives back to the system what starting up (imports, the app's own start) left free on the C heap,
    which glibc keeps otherwise: every worker holds less for as long as it runs."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except Exception:
        pass  # not glibc


def detect_interface(app, wanted):
    """'wsgi' or 'asgi': `wanted` unless it is 'auto', then guessed from the callable.

    A coroutine function, or an object whose __call__ is one (Starlette,
    FastAPI, Django's ASGIHandler), is ASGI 3. A plain callable is WSGI,
    unless it takes exactly three positional arguments, as an ASGI app does:
    a wrapper returning a coroutine cannot be told from a WSGI app, so the
    user must say which.
    """
    if wanted != "auto":
        return wanted
    call = getattr(app, "__call__", None)
    # asyncio's test also knows functions marked with asyncio's own marker (asgiref's
    # markcoroutinefunction before Python 3.12); only an app that loaded asyncio can have
    # marked one, and a WSGI worker need not load it (it is the bulk of an idle worker's memory).
    asyncio = sys.modules.get("asyncio")
    for fn in (app, call):
        if fn is not None and (inspect.iscoroutinefunction(fn) or (asyncio is not None and asyncio.iscoroutinefunction(fn))):
            return "asgi"
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return "wsgi"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in params if p.kind in positional and p.default is inspect.Parameter.empty]
    if len(required) == 3:
        raise AppError(
            "cannot tell whether the app is WSGI or ASGI: it takes three arguments like an ASGI app "
            "but is not a coroutine function; give --interface asgi (or wsgi)"
        )
    return "wsgi"


def resolve_callable(module, expr, spec):
    call_args = None
    if expr.endswith(")") and "(" in expr:
        expr, _, arg_text = expr[:-1].partition("(")
        call_args = parse_call_args(arg_text, spec)
    obj = module
    for part in expr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = ""
            if obj is module:
                try:
                    found = callables_in(module)
                except Exception:  # a hint only: an odd object (a proxy that raises) must not hide the error
                    found = []
                if found:
                    hint = "; the callables it has: %s" % ", ".join(found)
            raise AppError("%s has no attribute %r (APP was %r)%s" % (module.__name__, expr, spec, hint)) from None
    if call_args is not None:
        obj = obj(*call_args[0], **call_args[1])
    if not callable(obj):
        raise AppError("%r is not callable (APP was %r)" % (expr, spec))
    return obj


def callables_in(module, most=8):
    """What APP could have named in `module`: its public callables, but classes, modules and functions
    it imported from elsewhere (an app object made from an imported class stays)."""
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not callable(obj) or inspect.isclass(obj) or inspect.ismodule(obj):
            continue
        if inspect.isroutine(obj) and getattr(obj, "__module__", None) != module.__name__:
            continue
        names.append(name)
    return names if len(names) <= most else names[:most] + ["..."]


def parse_call_args(text, spec):
    try:
        call = ast.parse("f(%s)" % text, mode="eval").body
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError):
        raise AppError("factory arguments must be Python literals (APP was %r)" % spec)
    return args, kwargs


# What passed check_headers before: statuses, and header tuples mapped to their
# Content-Length (-1 for other headers). Most apps send the same few every time;
# a tuple of two str that passed once passes again. Bounded: emptied when full.
_good_statuses = set()
_good_headers = {}
# Hop-by-hop header names an app sent, said once per worker.
_dropped_names = set()
_CACHE_LIMIT = 4096
# A header name is a token; a value is visible ASCII, spaces, tabs and obs-text (no CR, LF, NUL or other control).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")


def check_headers(status, headers):
    """The response's declared Content-Length (None if it has none) and its headers,
    checked; AppError for what HTTP does not allow. The app's list is returned as it is,
    values stripped of outer spaces, or a new one where a header must go; the caller
    adds to a copy, never to the app's list, which the app may use again.

    Hop-by-hop headers (PEP 3333 forbids them) are dropped with a word in the log, as
    gunicorn drops them (SSE examples send Connection: keep-alive), except
    Connection: close, which the front honours by closing after the answer."""
    if type(status) is not str or status not in _good_statuses:
        if type(status) is not str:
            raise AppError("status must be a str, got %r" % (status,))
        if len(status) < 3 or not status[:3].isdigit() or status[3:4] not in ("", " "):
            raise AppError("status must look like '200 OK', got %r" % status)
        if not "100" <= status[:3] <= "599":
            raise AppError("the status code must be from 100 to 599 (RFC 9110), got %r" % status)
        if len(_good_statuses) >= _CACHE_LIMIT:
            _good_statuses.clear()
        _good_statuses.add(status)
    if type(headers) is not list:
        raise AppError("response headers must be a list, got %s" % type(headers).__name__)
    content_length = None
    hop = False
    good = _good_headers
    for item in headers:
        if type(item) is tuple:
            try:
                known = good.get(item)
            except TypeError:  # something unhashable in it: refused below
                known = None
            if known is not None:
                if known >= 0:
                    if content_length is not None:
                        raise AppError("Content-Length given twice (%d and %d)" % (content_length, known))
                    content_length = known
                continue
        if type(item) is not tuple or len(item) != 2:
            raise AppError("each response header must be a (name, value) tuple, got %r" % (item,))
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise AppError("header names and values must be str: %r" % (item,))
        stripped = value[:1] == " " or value[-1:] == " "
        if stripped:
            value = value.strip()  # Django's cookies start with one; gunicorn strips too
            headers[headers.index(item)] = (name, value)
        lower = name.lower()
        if lower in HOP_BY_HOP:
            hop = True
            continue
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise AppError("header %r value is not latin-1: %r" % (name, value)) from None
        # What HTTP allows (RFC 9110 §5): the front writes checked heads as they are.
        if _TOKEN.match(name) is None or _BAD_VALUE.search(value) is not None:
            raise AppError("header %r contains a forbidden character" % name)
        known = -1
        if lower == "content-length":
            if not value.isdigit():
                raise AppError("Content-Length must be a whole number, got %r" % value)
            known = int(value)
            if content_length is not None:
                raise AppError("Content-Length given twice (%d and %d)" % (content_length, known))
            content_length = known
        if not stripped:
            if len(good) >= _CACHE_LIMIT:
                good.clear()
            good[item] = known
    if hop:
        headers = without_hop_by_hop(headers)
    if content_length is not None and (status[0] == "1" or status[:3] == "204"):
        # RFC 9110 §8.6: never on a 1xx or 204, which have no body (nginx drops it too).
        return None, [h for h in headers if h[0].lower() != "content-length"]
    return content_length, headers


def without_hop_by_hop(headers):
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower not in HOP_BY_HOP or (lower == "connection" and value.strip().lower() == "close"):
            kept.append((name, value))
        elif lower not in _dropped_names:
            _dropped_names.add(lower)
            sys.stderr.write("the app sent a hop-by-hop %s header (PEP 3333 leaves those to the server); dropped, here and from now on\n" % name)
    return kept


def with_reason(status):
    """A status given as its code alone ("200": PEP 3333 asks for a reason phrase, but gunicorn and
    uWSGI take it) with the code's standard reason, so that the status line has its space (RFC 9112 §4)."""
    try:
        return "%s %s" % (status, HTTPStatus(int(status)).phrase)
    except ValueError:
        return status + " "  # a code HTTP does not name: an empty reason


def bodiless(status):
    """1xx, 204 and 304 responses never have a body, nor a Content-Length for one."""
    return status[0] == "1" or status[:3] in ("204", "304")
