"""SQL verb of a statement, for the `operation` label: cheap, cached, never the SQL text itself."""

from __future__ import annotations

from ..catalogue.database import OPERATION

OTHER = "other"
_VERBS = frozenset(v for v in OPERATION.values or () if v != OTHER)
# Spellings PostgreSQL accepts for the same command.
_ALIASES = {"START": "BEGIN", "END": "COMMIT", "ABORT": "ROLLBACK", "TABLE": "SELECT", "VALUES": "SELECT"}

# Applications repeat a small set of query strings; one dict lookup answers them after the first
# call. Queries with inlined literals are all different, so the cache is bounded: when full it is
# emptied (the hot queries come back at once) and very long strings are never kept.
_CACHE_MAX = 2048
_CACHEABLE_LEN = 4096
_cache: dict[str, str] = {}


def operation(query: object) -> str:
    """The statement's SQL verb (one of the catalogue's `operation` values), else `other`."""
    found = _cache.get(query) if isinstance(query, str) else None
    if found is not None:
        return found
    verb = classify(query)
    if isinstance(query, str) and len(query) <= _CACHEABLE_LEN:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[query] = verb
    return verb


def classify(query: object) -> str:
    """First keyword after whitespace, comments and opening parentheses; uncached."""
    if not isinstance(query, str):
        return OTHER
    n = len(query)
    i = 0
    while i < n:
        c = query[i]
        if c.isspace() or c == "(":
            i += 1
        elif query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif query.startswith("/*", i):
            i = _skip_block_comment(query, i)
        else:
            break
    start = i
    while i < n and (query[i].isalpha() or query[i] == "_"):
        i += 1
    word = query[start:i].upper()
    word = _ALIASES.get(word, word)
    return word if word in _VERBS else OTHER


def _skip_block_comment(query: str, i: int) -> int:
    # PostgreSQL block comments nest.
    depth = 0
    n = len(query)
    while i < n:
        if query.startswith("/*", i):
            depth += 1
            i += 2
        elif query.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n
