"""What a frame between an engine trigger and the watcher may hold (docs/reference.md: Triggers
answered warm): the framing, the bounded shape of a request and of an answer, the checks of
engine refs. Both sides import it (`network_plugin.warm`, `network_plugin.agent`), so it
imports only built-in modules, and `_json` (~0.45 ms) only once an answer is read.

A frame is a 4-byte length, then JSON (ASCII). JSON has no shared references and declares no
counts, so what a decoder builds is bounded by the frame's size: a request is at most
MAX_REQUEST bytes, an answer MAX_ANSWER. Both are decoded by `_json`'s C scanner (the trigger
side never imports the `json` package: ~13 ms), nesting beyond the interpreter's recursion
limit is malformed, and so is an integer of more than MAX_DIGITS digits (Python before 3.11
would convert a long one in quadratic time).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Callable

PROTOCOL = 2  # 1: marshal frames
ACK = b"\x06"
MAX_REQUEST = 64 * 1024
# A listing of 1,000 containers is ~1.9 MiB (one of Dokku's containers is ~1.9 KB of JSON).
MAX_ANSWER = 8 * 1024 * 1024
MAX_DIGITS = 20  # every integer of the engine's API fits in 64 bits
# An engine ref goes into the engine's URL path: never `/`, `.` or `..`.
MAX_REF = 255
REF_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
REF_CHARACTERS = "".join(sorted(REF_FIRST)) + "_.-"
OK = "ok"
API_ERROR = "api"
MISMATCH = "mismatch"
REFUSED = "error"
STATUS = "status"
# Not an SDK call: the ids of networks known to exist, from the watcher's view (else None).
KNOWN_NETWORK_IDS = "known_network_ids"
# Not an SDK call either: the writer triggers the watcher runs for a trigger (their arguments,
# all strings, by number); the answer is their exit status.
WRITES = {
    "network-write-ipaddr": 4,
    "network-write-port": 4,
    "post-app-clone-setup": 2,
    "post-app-rename-setup": 2,
}
MALFORMED = "a malformed request"


class Malformed(ValueError):
    """A frame that is not of the protocol's shape."""


def is_ref(value: object) -> bool:
    """A container or network id or name, fit for the engine's URL path."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_REF
        and value[0] in REF_FIRST
        and not value.strip(REF_CHARACTERS)
    )


def _is_flag(value: object) -> bool:
    return isinstance(value, bool)


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_names(value: object) -> bool:
    """A list of strings (or None: the SDK's default)."""
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _is_text_map(value: object) -> bool:
    return value is None or (
        isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    )


def _is_filters(value: object) -> bool:
    """The engine's filters: each a string or a list of strings."""
    return value is None or (
        isinstance(value, dict)
        and all(isinstance(item, str) or (_is_names(item) and item is not None) for item in value.values())
    )


def _is_none(value: object) -> bool:
    return value is None


# The SDK calls the triggers' code makes, nothing else: how many engine refs come first, the
# keyword arguments that code passes (each with its check), and the type of the result.
CALLS: dict[str, tuple[int, dict[str, Callable[[object], bool]], type]] = {
    "containers": (0, {"all": _is_flag, "filters": _is_filters}, list),
    "inspect_container": (1, {}, dict),
    "networks": (0, {"names": _is_names, "filters": _is_filters}, list),
    "inspect_network": (1, {}, dict),
    "info": (0, {}, dict),
    "connect_container_to_network": (2, {"aliases": _is_names}, type(None)),
    "disconnect_container_from_network": (2, {"force": _is_flag}, type(None)),
    "create_network": (
        1,
        {
            "driver": _is_text,
            "options": _is_text_map,
            "ipam": _is_none,  # address pools: made cold (the SDK's IPAMConfig)
            "check_duplicate": _is_flag,
            "internal": _is_flag,
            "labels": _is_text_map,
            "enable_ipv6": _is_flag,
            "attachable": _is_flag,
        },
        dict,
    ),
}


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def encode(message: object) -> bytes:
    """A trigger's request as JSON: None, bools, ints, strings, lists (tuples) and dicts of
    string keys; ValueError for anything else (the call is then made cold)."""
    from _json import encode_basestring_ascii

    parts: list[str] = []

    def add(value: object) -> None:
        if value is None:
            parts.append("null")
        elif value is True or value is False:
            parts.append("true" if value else "false")
        elif isinstance(value, int):
            parts.append(str(int(value)))
        elif isinstance(value, str):
            parts.append(encode_basestring_ascii(value))
        elif isinstance(value, (list, tuple)):
            parts.append("[")
            for index, item in enumerate(value):
                parts.append("," if index else "")
                add(item)
            parts.append("]")
        elif isinstance(value, dict):
            parts.append("{")
            for index, (key, item) in enumerate(value.items()):
                if not isinstance(key, str):
                    raise ValueError(f"a key of type {type(key).__name__} cannot be sent")
                parts.append(f"{',' if index else ''}{encode_basestring_ascii(key)}:")
                add(item)
            parts.append("}")
        else:
            raise ValueError(f"a value of type {type(value).__name__} cannot be sent")

    add(message)
    return "".join(parts).encode("ascii")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_DIGITS + 1:  # its sign
        raise Malformed("an integer too long")
    return int(text)


def _no_constant(text: str) -> object:
    raise Malformed(f"{text} is not JSON")


class _Context:
    """What `_json.make_scanner` reads of a decoder: strict JSON, no hooks, bounded integers."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = staticmethod(_bounded_int)
    parse_constant = staticmethod(_no_constant)
    memo: dict = {}  # noqa: RUF012 - read once by the scanner, which keeps its own


_scanner: Callable[[str, int], tuple[object, int]] | None = None


def decode(data: bytes) -> object:
    """One JSON value, the whole of `data`; Malformed for anything else."""
    global _scanner  # noqa: PLW0603 - made once per process, on the first answer
    if _scanner is None:
        from _json import make_scanner

        _scanner = make_scanner(_Context())
    # UnicodeDecodeError is a ValueError; SystemError: the scanners of Python 3.10 and 3.11 fail
    # so to raise their JSONDecodeError while the json package is not imported.
    try:
        text = data.decode("ascii")
        value, end = _scanner(text, 0)
    except (ValueError, StopIteration, RecursionError, SystemError) as error:
        raise Malformed("not JSON") from error
    if end != len(text):
        raise Malformed("not one JSON value")
    return value


def request_of(message: object) -> tuple[int, str, str, list, dict]:
    """(protocol, version, call, args, kwargs) of a decoded request: Malformed unless each has
    its type. The call's own arguments are checked by `check_call`."""
    if not isinstance(message, list) or len(message) != 5:
        raise Malformed(MALFORMED)
    protocol, version, name, args, kwargs = message
    if (
        type(protocol) is not int
        or not isinstance(version, str)
        or not isinstance(name, str)
        or not isinstance(args, list)
        or not isinstance(kwargs, dict)
    ):
        raise Malformed(MALFORMED)
    return protocol, version, name, args, kwargs


def check_call(name: str, args: list, kwargs: dict) -> None:
    """Malformed unless `name` is an allowed call, given engine refs where the engine's URL takes
    them and only the keyword arguments the triggers' code passes, each of its type."""
    if name == KNOWN_NETWORK_IDS:
        if len(args) != 1 or args[0] is None or not _is_names(args[0]) or kwargs:
            raise Malformed(MALFORMED)
        return
    if name in WRITES:
        if len(args) != WRITES[name] or not _is_names(args) or kwargs:
            raise Malformed(MALFORMED)
        return
    if name not in CALLS:
        raise Malformed(MALFORMED)
    refs, keywords, _ = CALLS[name]
    if len(args) != refs or not all(is_ref(arg) for arg in args):
        raise Malformed(MALFORMED)
    for key, value in kwargs.items():
        check = keywords.get(key)
        if check is None or not check(value):
            raise Malformed(MALFORMED)


def _is_result(name: str, value: object) -> bool:
    if name == KNOWN_NETWORK_IDS:
        return _is_text_map(value)
    if name in WRITES:
        return type(value) is int
    return name in CALLS and isinstance(value, CALLS[name][2])


def answer_of(name: str, answer: object) -> tuple:
    """A decoded answer to the call `name` as a tuple: (OK, a result of the call's type),
    (API_ERROR, status, explanation), (MISMATCH or REFUSED, text) or (STATUS, counts);
    Malformed for anything else."""
    fits = False
    if isinstance(answer, list) and len(answer) in (2, 3):
        kind, value = answer[0], answer[1]
        if len(answer) == 3:
            fits = kind == API_ERROR and type(value) is int and isinstance(answer[2], str)
        elif kind == OK:
            fits = _is_result(name, value)
        elif kind in (MISMATCH, REFUSED):
            fits = isinstance(value, str)
        else:
            fits = kind == STATUS and isinstance(value, dict)
    if not fits:
        raise Malformed("a malformed answer")
    return tuple(answer)
