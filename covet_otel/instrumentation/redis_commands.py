"""Redis command names that may become a `command` label, and the hit rule per read command.

The `command` label is bounded by this fixed set: anything else (a typo, a module command not
listed here, a name built from user input) is reported as `other`, so no key or argument can
ever reach a label. Multi-word commands (`CLIENT SETNAME`, `CONFIG GET`) are labelled by their
first word.
"""

from __future__ import annotations

from collections.abc import Callable

from ..catalogue import cache

# Top-level commands of Redis 7.0 (`COMMAND LIST`), the ones added up to Redis 8 and the common
# Redis Stack module commands that redis-py has methods for.
KNOWN_COMMANDS: frozenset[str] = frozenset(
    """
    ACL APPEND ASKING AUTH BGREWRITEAOF BGSAVE BITCOUNT BITFIELD BITFIELD_RO BITOP BITPOS BLMOVE
    BLMPOP BLPOP BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN CLIENT CLUSTER COMMAND CONFIG COPY
    DBSIZE DEBUG DECR DECRBY DEL DELEX DIGEST DISCARD DUMP ECHO EVAL EVALSHA EVALSHA_RO EVAL_RO
    EXEC EXISTS EXPIRE EXPIREAT EXPIRETIME FAILOVER FCALL FCALL_RO FLUSHALL FLUSHDB FUNCTION
    GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO GEORADIUS_RO
    GEOSEARCH GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HELLO HEXISTS HEXPIRE
    HEXPIREAT HEXPIRETIME HGET HGETALL HGETDEL HGETEX HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET
    HPERSIST HPEXPIRE HPEXPIREAT HPEXPIRETIME HPTTL HRANDFIELD HSCAN HSET HSETEX HSETNX HSTRLEN
    HTTL HVALS INCR INCRBY INCRBYFLOAT INFO KEYS LASTSAVE LATENCY LCS LINDEX LINSERT LLEN LMOVE
    LMPOP LOLWUT LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM MEMORY MGET MIGRATE MODULE MONITOR
    MOVE MSET MSETEX MSETNX MULTI OBJECT PERSIST PEXPIRE PEXPIREAT PEXPIRETIME PFADD PFCOUNT
    PFDEBUG PFMERGE PFSELFTEST PING PSETEX PSUBSCRIBE PSYNC PTTL PUBLISH PUBSUB PUNSUBSCRIBE QUIT
    RANDOMKEY READONLY READWRITE RENAME RENAMENX REPLCONF REPLICAOF RESET RESTORE RESTORE-ASKING
    ROLE RPOP RPOPLPUSH RPUSH RPUSHX SADD SAVE SCAN SCARD SCRIPT SDIFF SDIFFSTORE SELECT SET SETBIT
    SETEX SETNX SETRANGE SHUTDOWN SINTER SINTERCARD SINTERSTORE SISMEMBER SLAVEOF SLOWLOG SMEMBERS
    SMISMEMBER SMOVE SORT SORT_RO SPOP SPUBLISH SRANDMEMBER SREM SSCAN SSUBSCRIBE STRALGO STRLEN
    SUBSCRIBE SUBSTR SUNION SUNIONSTORE SUNSUBSCRIBE SWAPDB SYNC TIME TOUCH TTL TYPE UNLINK
    UNSUBSCRIBE UNWATCH WAIT WAITAOF WATCH XACK XACKDEL XADD XAUTOCLAIM XCLAIM XDEL XDELEX XGROUP
    XINFO XLEN XPENDING XRANGE XREAD XREADGROUP XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZDIFF
    ZDIFFSTORE ZINCRBY ZINTER ZINTERCARD ZINTERSTORE ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN
    ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX
    ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN
    ZSCORE ZUNION ZUNIONSTORE
    VADD VCARD VDIM VEMB VGETATTR VINFO VLINKS VRANDMEMBER VRANGE VREM VSETATTR VSIM
    JSON.ARRAPPEND JSON.ARRINDEX JSON.ARRINSERT JSON.ARRLEN JSON.ARRPOP JSON.ARRTRIM JSON.CLEAR
    JSON.DEBUG JSON.DEL JSON.FORGET JSON.GET JSON.MERGE JSON.MGET JSON.MSET JSON.NUMINCRBY
    JSON.NUMMULTBY JSON.OBJKEYS JSON.OBJLEN JSON.RESP JSON.SET JSON.STRAPPEND JSON.STRLEN
    JSON.TOGGLE JSON.TYPE
    FT.AGGREGATE FT.ALIASADD FT.ALIASDEL FT.ALIASUPDATE FT.ALTER FT.CONFIG FT.CREATE FT.CURSOR
    FT.DICTADD FT.DICTDEL FT.DICTDUMP FT.DROPINDEX FT.EXPLAIN FT.EXPLAINCLI FT.INFO FT.PROFILE
    FT.SEARCH FT.SPELLCHECK FT.SUGADD FT.SUGDEL FT.SUGGET FT.SUGLEN FT.SYNDUMP FT.SYNUPDATE
    FT.TAGVALS FT._LIST
    TS.ADD TS.ALTER TS.CREATE TS.CREATERULE TS.DECRBY TS.DEL TS.DELETERULE TS.GET TS.INCRBY
    TS.INFO TS.MADD TS.MGET TS.MRANGE TS.MREVRANGE TS.QUERYINDEX TS.RANGE TS.REVRANGE
    BF.ADD BF.CARD BF.EXISTS BF.INFO BF.INSERT BF.LOADCHUNK BF.MADD BF.MEXISTS BF.RESERVE
    BF.SCANDUMP CF.ADD CF.ADDNX CF.COUNT CF.DEL CF.EXISTS CF.INFO CF.INSERT CF.INSERTNX
    CF.LOADCHUNK CF.MEXISTS CF.RESERVE CF.SCANDUMP CMS.INCRBY CMS.INFO CMS.INITBYDIM
    CMS.INITBYPROB CMS.MERGE CMS.QUERY TOPK.ADD TOPK.COUNT TOPK.INCRBY TOPK.INFO TOPK.LIST
    TOPK.QUERY TOPK.RESERVE TDIGEST.ADD TDIGEST.BYRANK TDIGEST.BYREVRANK TDIGEST.CDF
    TDIGEST.CREATE TDIGEST.INFO TDIGEST.MAX TDIGEST.MERGE TDIGEST.MIN TDIGEST.QUANTILE
    TDIGEST.RANK TDIGEST.RESET TDIGEST.REVRANK TDIGEST.TRIMMED_MEAN
    """.split()
)

# The operation label of a whole pipeline; a transaction is labelled MULTI (a real command name).
PIPELINE = "PIPELINE"
TRANSACTION = "MULTI"


# Hit rules: each takes the command's parsed reply (and its arguments) and returns
# (hits, misses). They only look at what redis-py already parsed, never at the values.
def _found_unless_nil(reply: object, args: tuple) -> tuple[int, int]:
    # An empty string is a stored value (a hit); only nil means the key or field is absent.
    return (0, 1) if reply is None else (1, 0)


def _found_if_nonempty(reply: object, args: tuple) -> tuple[int, int]:
    # Redis deletes a hash or set when its last element goes, so an empty reply means no key;
    # HEXISTS replies 1/0 (True/False after redis-py's callback).
    return (1, 0) if reply else (0, 1)


def _per_element(reply: object, args: tuple) -> tuple[int, int]:
    if not isinstance(reply, (list, tuple)):
        return (0, 0)
    missing = reply.count(None)
    return (len(reply) - missing, missing)


def _exists(reply: object, args: tuple) -> tuple[int, int]:
    # EXISTS k1 k2 ... replies how many of the given keys exist (a repeated key counts twice).
    if not isinstance(reply, int):
        return (0, 0)
    asked = len(args) - 1
    found = min(max(reply, 0), asked)
    return (found, asked - found)


# (reply, command arguments) -> (hits, misses)
HitRule = Callable[[object, tuple], tuple[int, int]]

# The command sets live in the catalogue, whose notes state the rule to users.
HIT_RULES: dict[str, HitRule] = {
    **dict.fromkeys(cache.HIT_ONE_UNLESS_NIL, _found_unless_nil),
    **dict.fromkeys(cache.HIT_ONE_IF_NONEMPTY, _found_if_nonempty),
    **dict.fromkeys(cache.HIT_PER_ELEMENT, _per_element),
    **dict.fromkeys(cache.HIT_PER_KEY_COUNT, _exists),
}


def command_label(name: object) -> str:
    """The label for a command name as redis-py passes it (str or bytes, any case, maybe two
    words); `other` when it is not a known command."""
    if isinstance(name, (bytes, bytearray, memoryview)):
        name = bytes(name).decode("ascii", "replace")
    if not isinstance(name, str) or len(name) > 64:
        return "other"
    words = name.split(None, 1)
    if not words:
        return "other"
    first = words[0].upper()
    return first if first in KNOWN_COMMANDS else "other"


__all__ = ["HIT_RULES", "KNOWN_COMMANDS", "PIPELINE", "TRANSACTION", "HitRule", "command_label"]
