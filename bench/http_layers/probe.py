# Sends the eight cases to an HTTP server on 127.0.0.1:PORT (process PID, for its RSS) and prints
# what came back: the statuses, whether the connection was closed or reset, bytes taken, RSS growth.
#   python3 probe.py PORT PID
import socket, sys, time, re
host, port, pid = '127.0.0.1', int(sys.argv[1]), int(sys.argv[2])
MAXB = 1 << 20
def rss():
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1]) // 1024
def conn():
    s = socket.create_connection((host, port)); s.settimeout(5); return s
def readall(s, t=3):
    s.settimeout(t); out = b''
    try:
        while True:
            d = s.recv(65536)
            if not d: return out, 'closed'
            out += d
    except socket.timeout: return out, 'open'
    except ConnectionResetError: return out, 'reset'
def statuses(b): return [int(x) for x in re.findall(rb'HTTP/1\.[01] (\d{3})', b)]
res = {}
s = conn(); s.sendall(b'GET /h HTTP/1.1\r\nHost: x\r\n\r\nGET /h HTTP/1.1\r\nHost: x\r\n\r\n')
b, st = readall(s, 2); res['pipelined 2 GETs'] = f'{statuses(b)}'
s = conn(); body = b'x' * (4 * MAXB)
try:
    s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n' % len(body) + body); err = ''
except Exception as e: err = type(e).__name__
b, st = readall(s, 3); res['4 MB body sent whole (max 1 MB)'] = f'{statuses(b)} {st} {err}'
s = conn(); s.sendall(b'GET /h HTTP/1.1\r\nHost: x\r\n\r\n'); s.shutdown(socket.SHUT_WR)
b, st = readall(s, 2); res['half-close after request'] = f'{statuses(b)} {st}'
s = conn(); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n')
b, st = readall(s, 2); res['malformed chunk size'] = f'{statuses(b)} {st}'
s = conn(); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n')
b, st = readall(s, 2); res['chunked with trailer'] = f'{statuses(b)} {st}'
s = conn(); s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
b, st = readall(s, 2); res['CL + TE chunked'] = f'{statuses(b)} {st}'
r0 = rss(); s = conn(); sent = 0; err = ''
s.sendall(b'GET /'); chunk = b'a' * 65536
try:
    while sent < 64 << 20:
        s.sendall(chunk); sent += len(chunk)
except Exception as e: err = type(e).__name__
b, st = readall(s, 2); res['64 MB request line'] = f'{statuses(b)} {st} accepted {sent>>20} MB {err} rss +{rss()-r0} MB'
r0 = rss(); s = conn(); sent = 0; err = ''
try:
    s.sendall(b'GET /h HTTP/1.1\r\nHost: x\r\n')
    for i in range(0, 200000, 1000):
        s.sendall(b''.join(b'X-H%d: v\r\n' % j for j in range(i, i + 1000))); sent += 1000
    s.sendall(b'\r\n')
except Exception as e: err = type(e).__name__
b, st = readall(s, 3); res['200,000 headers'] = f'{statuses(b)} {st} sent {sent} {err} rss +{rss()-r0} MB'
for k, v in res.items(): print(f'{k:34s} {v}')
