#!/usr/bin/env python3
"""Hold N idle Kafka client connections open against a broker and report its resident memory.

Each connection completes an ApiVersions v0 round trip (so it is a real, served client
connection), then stays open and idle. Prints the broker's RSS before and with them open.

    python3 scripts/idle-connections.py --bootstrap 127.0.0.1:9092 --pid $(pgrep -f 'sluice broker') --count 1000
"""
import argparse
import resource
import socket
import struct
import time


def rss_mb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError('no VmRSS for pid %d' % pid)


def api_versions(sock, corr):
    client = b'idle'
    body = struct.pack('>hhih', 18, 0, corr, len(client)) + client
    sock.sendall(struct.pack('>i', len(body)) + body)
    size = struct.unpack('>i', recv_exact(sock, 4))[0]
    frame = recv_exact(sock, size)
    got = struct.unpack('>i', frame[:4])[0]
    if got != corr:
        raise RuntimeError('correlation id %d, expected %d' % (got, corr))


def recv_exact(sock, n):
    out = b''
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise RuntimeError('broker closed the connection')
        out += chunk
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--bootstrap', required=True)
    p.add_argument('--pid', type=int, required=True)
    p.add_argument('--count', type=int, default=1000)
    p.add_argument('--hold', type=float, default=5.0, help='seconds to hold them before measuring')
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, a.count + 100)), hard))
    host, port = a.bootstrap.rsplit(':', 1)
    before = rss_mb(a.pid)
    socks = []
    for i in range(a.count):
        s = socket.create_connection((host, int(port)), timeout=10)
        api_versions(s, i)
        socks.append(s)
    time.sleep(a.hold)
    during = rss_mb(a.pid)
    # Still serving: one more round trip on the first and the last connection.
    api_versions(socks[0], 1 << 20)
    api_versions(socks[-1], (1 << 20) + 1)
    print('connections=%d broker_rss_before_mb=%.1f broker_rss_with_connections_mb=%.1f per_connection_kb=%.1f'
          % (a.count, before, during, (during - before) * 1024 / a.count))
    for s in socks:
        s.close()


if __name__ == '__main__':
    main()
