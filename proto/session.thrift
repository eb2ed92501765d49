/*
 * SessionService: the SessionServer wire contract.
 *
 * Semantics follow the ASP.NET State Server protocol (MS-ASP); see docs/PROTOCOL.md.
 * Wire format: framed transport + binary protocol (Thrift's defaults for clients).
 *
 * Names, parameter orders and field ids below are fixed: clients in other languages are generated
 * from this file. New fields, statuses and methods may be added; existing ones never change.
 *
 * Common rules:
 *  - sessionId: 1..256 bytes of printable ASCII (0x21..0x7E). Anything else -> InvalidRequest.
 *  - lockCookie: 0 means "no cookie". Cookies are per item and only increase.
 *  - Expiry is sliding: every successful access (OK answer) restarts the item's timeout.
 *  - version: grows with every change of the item's stored state (data, timeout, the
 *    uninitialized flag) and never goes back, even across remove and re-create. Lock and unlock
 *    and sliding-expiry touches do not change it.
 *  - A lock older than the server's --max_lock_age_seconds (default 120) is dropped by the server.
 */
namespace cpp sessionserver.thrift
namespace py sessionserver

enum Status {
  OK = 0,
  NOT_FOUND = 1,
  LOCKED = 2,
  /**
   * The server is draining and has handed this session off: the backing store has every change
   * this server made to it, and this server will not serve it again. Send the request to another
   * server (it restores the session from the backing store). Never the answer to the holder of
   * the session's lock (its put, release or remove completes here), nor to remove.
   */
  MOVED = 3,
}

struct GetResult {
  1: Status status,
  /** OK: the item's data. */
  2: binary data,
  /** OK: the item's timeout in minutes. */
  3: i32 timeoutMinutes,
  /** OK from getExclusive: the new lock cookie. LOCKED: the holder's cookie. */
  4: i64 lockCookie,
  /** LOCKED: milliseconds since the holder took the lock. */
  5: i64 lockAgeMs,
  /** OK: true for exactly one request after an uninitialized item was created. */
  6: bool initializeItem,
  /** OK: the item's version. */
  7: i64 version,
  /** From getWaiting: the request found the item locked and waited on the server for it. */
  8: bool waited,
}

/** The request was malformed or out of range; nothing was changed. The message says what. */
exception InvalidRequest {
  1: string message,
}

/** Where one session is on one server (for support; see sessionctl locate). */
struct Location {
  1: bool inMemory,
  2: bool locked,
  /** Left memory, on its way to the disk tier (stagedRemoval: as a removal). */
  3: bool staged,
  4: bool stagedRemoval,
  /** The version of the memory or staged copy. */
  5: i64 memoryVersion,
  6: bool onDisk,
  7: i64 diskVersion,
  /** A change waits in the write-behind queue: "put", "remove" or "touch". */
  8: bool queued,
  9: string queuedKind,
  10: i64 queuedVersion,
}

/**
 * What a replicated change does: the values of ReplicaOp.kind. The field itself is an i32, not
 * this enum: a C++ enum holding a value it does not define (a newer peer's, a hostile one) is
 * undefined behaviour, so the receiver checks the integer before it names it.
 */
enum ReplicaKind {
  PUT = 0,
  REMOVE = 1,
  /** Sliding expiry of the given version. */
  TOUCH = 2,
}

/**
 * What the receiving site did with one ReplicaOp: the values replicate answers, one i32 per op
 * (an i32 for the reason given at ReplicaKind).
 */
enum ReplicaResult {
  APPLIED = 0,
  /** This site holds a newer state. */
  STALE = 1,
  /** A touch of a version this site does not hold. */
  IGNORED = 2,
  /** Malformed (bad kind, id, version, timeout or size): never applicable, not retried. */
  REJECTED = 3,
}

/** One change replicated from the other data centre (docs/TWO_SITES.md). */
struct ReplicaOp {
  1: string sessionId,
  /** A ReplicaKind value. */
  2: i32 kind,
  /** put: the value. */
  3: binary data,
  4: i32 timeoutMinutes,
  /** The version the origin site gave the change; kept as is. */
  5: i64 version,
  /** Absolute expiry, microseconds since the epoch (put, touch); a remove's tombstone lifetime. */
  6: i64 expiresAtUs,
  7: bool uninitialized,
}

struct ServerInfo {
  1: string serverId,
  /**
   * "active"; "draining" (an operator asked it to drain: it takes no new sessions and hands
   * sessions off with MOVED); "drained" (draining, and the backing store has every change it
   * holds: it may be stopped). The same text as the fleet registry's state field
   * (fleet/server_state.h).
   */
  2: string state,
  3: i64 uptimeSeconds,
  /** Request and storage counters; names are listed in docs/PROTOCOL.md. */
  4: map<string, i64> counters,
}

service SessionService {
  /**
   * Reads the item without locking it. NOT_FOUND if missing or expired. LOCKED (with lockCookie
   * and lockAgeMs of the holder) if another request holds the lock. If the item was created
   * uninitialized, the first get or getExclusive clears the flag and reports initializeItem.
   */
  GetResult get(1: string sessionId) throws (1: InvalidRequest e)

  /**
   * Reads and locks the item. LOCKED (holder's cookie and age) if already locked; otherwise the
   * item's lock cookie is incremented, the lock time recorded, and the new cookie returned.
   */
  GetResult getExclusive(1: string sessionId) throws (1: InvalidRequest e)

  /**
   * get (exclusive false) or getExclusive (exclusive true) that, finding the item locked by
   * another request, waits on the server up to waitMs (0..60000) for that lock to be released
   * and is answered the moment it is (a release, a put or a remove of the holder): as get or
   * getExclusive would answer then. Still locked after waitMs: LOCKED, as from getExclusive.
   * waitMs 0 answers at once. Keep waitMs below the client's receive timeout.
   * Servers older than this method answer it with TApplicationException UNKNOWN_METHOD: poll
   * with get or getExclusive instead.
   */
  GetResult getWaiting(1: string sessionId, 2: bool exclusive, 3: i32 waitMs)
      throws (1: InvalidRequest e)

  /**
   * Starts a new session: creates the item uninitialized (empty data, timeoutMinutes 1..525600)
   * and locks it, answering as getExclusive would (OK, initializeItem true, the lock cookie).
   * Only for an id the caller has just drawn from at least 128 random bits: the server does not
   * ask the backing store whether the id exists (it cannot), so one call does what put with
   * createUninitialized and getExclusive do, without a Redis read. An id the server holds after
   * all is treated as by put(createUninitialized) and getExclusive (LOCKED if it is locked).
   * MOVED from a draining server. Servers older than this method answer UNKNOWN_METHOD.
   */
  GetResult startSession(1: string sessionId, 2: i32 timeoutMinutes) throws (1: InvalidRequest e)

  /**
   * Unlocks the item if lockCookie is the holder's. OK if it was not locked; LOCKED on a wrong
   * cookie; NOT_FOUND if there is no item.
   */
  Status releaseExclusive(1: string sessionId, 2: i64 lockCookie) throws (1: InvalidRequest e)

  /**
   * Stores data and timeout (minutes, 1..525600) and releases the lock.
   * LOCKED, nothing changes: the item is locked and lockCookie is not the holder's, or lockCookie
   * is non-zero and not the item's latest cookie (the caller's lock was dropped by age or
   * force-released and a newer lock was issued since: its copy is stale).
   * NOT_FOUND, nothing is created: lockCookie is non-zero and the item no longer exists (it was
   * removed, e.g. by sign-out, or expired): removal wins over a late save.
   * With createUninitialized: creates an uninitialized item when none exists; when one exists,
   * only restarts its timeout (OK). data longer than --max_value_bytes -> InvalidRequest.
   */
  Status put(1: string sessionId, 2: binary data, 3: i32 timeoutMinutes, 4: i64 lockCookie,
             5: bool createUninitialized) throws (1: InvalidRequest e)

  /** Deletes the item. NOT_FOUND if missing; LOCKED if locked and lockCookie is not the holder's. */
  Status remove(1: string sessionId, 2: i64 lockCookie) throws (1: InvalidRequest e)

  /** Restarts the item's sliding timeout, locked or not. NOT_FOUND if missing. */
  Status resetTimeout(1: string sessionId) throws (1: InvalidRequest e)

  /**
   * For a request that reaches this server for a session another server owned (failover, or a
   * return after one): makes this server's copy at least as new as the backing store's, since
   * the session may have changed elsewhere after this server last had it. OK: the copy here is
   * current (or was replaced by the backing store's, or dropped for a newer removal there);
   * NOT_FOUND: this server holds no copy (a read loads the backing store's); LOCKED: a request
   * here holds the lock, the copy is left as is. Without a backing store: NOT_FOUND. Fails
   * (TApplicationException) if the backing store cannot be read; the local copy then stands.
   */
  Status revalidate(1: string sessionId) throws (1: InvalidRequest e)

  /**
   * Applies changes replicated from the other data centre, each keeping its version (the higher
   * version wins; on equal versions the data that sorts higher; a removal is never undone by a
   * put of a lower version), and writes them behind to this site's Redis. Not replicated back.
   * One ReplicaResult value per op, in order.
   * At most 1024 ops per call. Fails as a whole (TApplicationException) if this site's Redis
   * cannot be read; the sender retries.
   */
  list<i32> replicate(1: list<ReplicaOp> ops, 2: string originDc)
      throws (1: InvalidRequest e)

  /** Where the session is on this server (memory, staging, disk, write-behind queue). */
  Location locate(1: string sessionId) throws (1: InvalidRequest e)

  /** The server's identity, state, uptime and counters. */
  ServerInfo info()

  /**
   * Test hook: moves this server's clock forward by millis (> 0). Refused with InvalidRequest
   * unless the server runs with --enable_debug_clock, which production servers never do.
   */
  void debugAdvanceClock(1: i64 millis) throws (1: InvalidRequest e)
}
