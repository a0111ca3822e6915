#!/usr/bin/python3
"""nginx in front of two `smolvlm serve` processes (docs/deploy.md), on loopback only.

Checks what a deployment relies on:
  1. a conversation that sends an X-Session-Id header stays on one server, so its follow-ups reuse
     that server's KV cache (cached prompt tokens > 0);
  2. with one server killed (SIGKILL) under load, no request is lost or answered twice: every
     request gets one response; the only failures are requests that were inside the killed server
     when it died (502, never retried: a POST already sent is not idempotent); a request retried
     on the other server had sent nothing to the first (nginx's $upstream_bytes_sent); the
     survivor's request counter equals the answers the clients saw from it; and once the death is
     noticed every request succeeds.

    /usr/bin/python3 tests/scaleout/nginx_failover.py BUILD/smolvlm MODEL_DIR

Exit status 0 when all holds, 1 with a message otherwise; bounded in time (a minute at most).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

NGINX_CONF = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
{routing}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://smolvlm;
{proxy}
      add_header X-Upstream $upstream_addr always;
      add_header X-Upstream-Bytes-Sent $upstream_bytes_sent always;
    }}
  }}
}}
"""


def deploy_snippets():
    """The upstream block and the location's proxy settings, as docs/deploy.md shows them: the
    test runs the documented configuration, not a copy of it."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "docs", "deploy.md"), encoding="utf-8") as fh:
        doc = fh.read()
    blocks = re.findall(r"```nginx\n(.*?)```", doc, re.S)
    routing = next(b for b in blocks if "upstream smolvlm" in b)
    proxy = next(b for b in blocks if "proxy_next_upstream" in b and "upstream smolvlm" not in b)
    return routing, proxy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, model):
    p = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "-t", "1", "--parallel", "2",
                          "--no-webui"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    port = None
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(r"ready on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        p.kill()
        raise SystemExit("a smolvlm serve did not become ready")
    threading.Thread(target=p.stdout.read, daemon=True).start()  # drain its output
    return p, port


def post(port, body, headers=None, timeout=20):
    """(status, headers dict, parsed body or None). A connection error gives status 0."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(body),
                  {"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        try:
            return r.status, h, json.loads(data)
        except ValueError:
            return r.status, h, None
    except (OSError, http.client.HTTPException):
        return 0, {}, None
    finally:
        c.close()


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(rf"^{name} (\d+)", text, re.M)
    return int(m.group(1))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    binary, model = sys.argv[1], sys.argv[2]
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    failures = []
    prefix = tempfile.mkdtemp(prefix="smolvlm-nginx-")
    servers, proxy = [], None
    try:
        for _ in range(2):
            servers.append(start_server(binary, model))
        (a_proc, a_port), (b_proc, b_port) = servers
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.mkdir(os.path.join(prefix, d))
        port = free_port()
        routing, proxy_conf = deploy_snippets()
        routing = re.sub(r"server 127\.0\.0\.1:8081", f"server 127.0.0.1:{a_port}", routing)
        routing = re.sub(r"server 127\.0\.0\.1:8082", f"server 127.0.0.1:{b_port}", routing)
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as fh:
            fh.write(NGINX_CONF.format(prefix=prefix, port=port, routing=routing, proxy=proxy_conf))
        proxy = subprocess.Popen([nginx, "-e", os.path.join(prefix, "error.log"), "-p", prefix,
                                  "-c", conf, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proxy.poll() is not None:
                    raise SystemExit("nginx did not start: " + proxy.stderr.read().strip())
                time.sleep(0.05)
        upstream_of = {f"127.0.0.1:{a_port}": "a", f"127.0.0.1:{b_port}": "b"}

        # 1. A conversation stays on one server and reuses its cache.
        dialogue = [{"role": "user", "content": "Tell me about the sea."}]
        seen = set()
        for turn in range(3):
            status, h, body = post(port, {"messages": dialogue, "max_tokens": 6},
                                   {"X-Session-Id": "conversation-1"})
            if status != 200:
                failures.append(f"sticky turn {turn}: status {status}")
                break
            seen.add(h.get("x-upstream"))
            if turn > 0 and body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0:
                failures.append(f"sticky turn {turn}: no cached prompt tokens (a cold server?)")
            dialogue += [{"role": "assistant", "content": body["choices"][0]["message"]["content"]},
                         {"role": "user", "content": f"And then {turn}?"}]
        if len(seen) != 1:
            failures.append(f"one conversation was answered by {sorted(seen)}")

        # 2. Load from 4 clients (each request its own session: spread over both), one server
        # killed after a second, two more seconds of load.
        results, lock = [], threading.Lock()
        stop_at = time.time() + 3.0
        kill_at = time.time() + 1.0

        def client(k):
            i = 0
            while time.time() < stop_at:
                t0 = time.time()
                status, h, _ = post(port, {"messages": [{"role": "user", "content": f"q {k} {i}"}],
                                           "max_tokens": 12}, {"X-Session-Id": f"c{k}-{i}"})
                with lock:
                    results.append((t0, time.time(), status, h.get("x-upstream", ""),
                                    h.get("x-upstream-bytes-sent", "")))
                i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(max(0.0, kill_at - time.time()))
        killed = time.time()
        b_proc.send_signal(signal.SIGKILL)
        b_proc.wait()
        dead = time.time()  # between `killed` and `dead` b may still take a request
        for t in threads:
            t.join(timeout=30)

        ok_a = 0
        for (t0, t1, status, ups, sent) in results:
            names = [upstream_of.get(u.strip(), u.strip()) for u in ups.split(",") if u.strip()]
            sent_list = [s.strip() for s in sent.split(",") if s.strip()]
            if status == 200:
                if names and names[-1] == "a":
                    ok_a += 1
                # A retry is fine only where the earlier tries sent nothing.
                for n, s in zip(names[:-1], sent_list[:-1]):
                    if s != "0":
                        failures.append(f"a request was sent to {n} ({s} bytes) and answered again "
                                        f"by {names[-1]}")
            elif status == 502 and names == ["b"] and t0 < dead and t1 > killed:
                pass  # inside the killed server when it died: an error, not retried
            else:
                failures.append(f"request at +{t0 - killed:.3f}s: status {status}, upstreams "
                                f"{names}, bytes sent {sent_list}")
        lost = [r for r in results if r[2] != 200]
        after = [r for r in results if r[0] > dead + 0.5]
        if not after:
            failures.append("no request was sent after the kill")
        if len(results) < 40:
            failures.append(f"only {len(results)} requests in 3 s")
        served_a = metric(a_port, "smolvlm_requests_total")
        # The sticky conversation's turns went to one server; count them where they went.
        sticky_on_a = 3 if seen == {f"127.0.0.1:{a_port}"} else 0
        if served_a != ok_a + sticky_on_a:
            failures.append(f"server a counted {served_a} requests, the clients saw "
                            f"{ok_a + sticky_on_a} answers from it")
        print(f"{len(results)} requests, {len(lost)} failed in flight on the killed server, "
              f"{len(after)} after it died (all answered by the survivor: "
              f"{all(r[2] == 200 for r in after)}); survivor counted {served_a}")
    finally:
        if proxy:
            proxy.terminate()
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
        for p, _ in servers:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(prefix, ignore_errors=True)
    if failures:
        for f in failures:
            print("FAILED: " + f)
        return 1
    print("nginx failover: all checks hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
