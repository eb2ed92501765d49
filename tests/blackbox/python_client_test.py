#!/usr/bin/python3
"""A second-language client: Python code generated from proto/session.thrift (Debian's
python3-thrift) drives the whole protocol cycle against the real session_server binary.

    python_client_test.py --server build/session_server --gen-py build/gen-py
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None


def start_server(extra_flags=()):
    tmp = tempfile.mkdtemp(prefix="ss-py-")
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen([ARGS.server, "--port=0", "--port_file=" + port_file, *extra_flags],
                            stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("session_server exited; see " + log.name)
        try:
            with open(port_file) as f:
                proc.log_path = log.name
                return proc, int(f.read())
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("session_server did not listen within 20 s")


def sanitizer_reports(log_path, max_lines=400):
    """Each sanitizer report in the server's log, whole (as tests/blackbox/server_process.cc)."""
    starts = ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
              ": runtime error: ")
    out, inside = [], False
    with open(log_path, errors="replace") as f:
        for line in f:
            if not inside and not any(s in line for s in starts):
                continue
            inside = not line.startswith("SUMMARY: ")
            out.append(line)
            if len(out) >= max_lines:
                break
    return "".join(out)


class PythonClientCycle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from thrift.protocol import TBinaryProtocol
        from thrift.transport import TSocket, TTransport
        from sessionserver import SessionService

        cls.proc, port = start_server(["--enable_debug_clock", "--max_value_bytes=65536"])
        sock = TSocket.TSocket("127.0.0.1", port)
        sock.setTimeout(5000)
        cls.transport = TTransport.TFramedTransport(sock)
        cls.client = SessionService.Client(TBinaryProtocol.TBinaryProtocol(cls.transport))
        cls.transport.open()

    @classmethod
    def tearDownClass(cls):
        cls.transport.close()
        cls.proc.send_signal(signal.SIGTERM)
        status = cls.proc.wait(timeout=20)
        reports = sanitizer_reports(cls.proc.log_path)
        assert not reports, "sanitizer report in " + cls.proc.log_path + ":\n" + reports
        assert status == 0, "server did not exit cleanly on SIGTERM (log: %s)" % cls.proc.log_path

    def test_full_cycle(self):
        from sessionserver.ttypes import Status
        c = self.client
        sid = "py-session-1"
        self.assertEqual(c.get(sid).status, Status.NOT_FOUND)
        self.assertEqual(c.put(sid, b"", 20, 0, True), Status.OK)           # create uninitialized
        r = c.getExclusive(sid)
        self.assertEqual(r.status, Status.OK)
        self.assertTrue(r.initializeItem)
        cookie = r.lockCookie
        self.assertNotEqual(cookie, 0)

        locked = c.getExclusive(sid)
        self.assertEqual(locked.status, Status.LOCKED)
        self.assertEqual(locked.lockCookie, cookie)
        self.assertEqual(c.put(sid, b"x", 20, cookie + 1, False), Status.LOCKED)

        payload = bytes(range(256)) * 4                                      # binary-safe
        self.assertEqual(c.put(sid, payload, 25, cookie, False), Status.OK)  # put releases lock
        r = c.get(sid)
        self.assertEqual((r.status, r.data, r.timeoutMinutes, r.initializeItem),
                         (Status.OK, payload, 25, False))
        version = r.version

        r = c.getExclusive(sid)
        self.assertEqual(r.status, Status.OK)
        self.assertGreater(r.lockCookie, cookie)
        self.assertEqual(c.releaseExclusive(sid, r.lockCookie + 1), Status.LOCKED)
        self.assertEqual(c.releaseExclusive(sid, r.lockCookie), Status.OK)
        self.assertEqual(c.releaseExclusive(sid, r.lockCookie), Status.OK)  # not locked: OK

        self.assertEqual(c.resetTimeout(sid), Status.OK)
        c.debugAdvanceClock(24 * 60 * 1000)
        self.assertEqual(c.resetTimeout(sid), Status.OK)                     # slid forward
        c.debugAdvanceClock(24 * 60 * 1000)
        r = c.get(sid)
        self.assertEqual(r.status, Status.OK)
        self.assertEqual(r.version, version)

        self.assertEqual(c.remove(sid, 0), Status.OK)
        self.assertEqual(c.get(sid).status, Status.NOT_FOUND)
        self.assertEqual(c.remove(sid, 0), Status.NOT_FOUND)

    def test_invalid_requests_name_the_problem(self):
        from sessionserver.ttypes import InvalidRequest
        c = self.client
        with self.assertRaises(InvalidRequest) as e:
            c.put("s", b"v", 0, 0, False)
        self.assertIn("timeoutMinutes", e.exception.message)
        with self.assertRaises(InvalidRequest) as e:
            c.put("s", b"v" * 65537, 20, 0, False)
        self.assertIn("max_value_bytes", e.exception.message)
        with self.assertRaises(InvalidRequest):
            c.get("")

    def test_info(self):
        info = self.client.info()
        self.assertTrue(info.serverId.startswith("127.0.0.1:"))
        self.assertEqual(info.state, "active")
        self.assertIn("requests_get", info.counters)
        self.assertIn("items", info.counters)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--gen-py", required=True)
    ARGS, rest = parser.parse_known_args()
    sys.path.insert(0, ARGS.gen_py)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
