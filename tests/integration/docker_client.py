#!/usr/bin/python3
"""Docker API clients other than the docker CLI, pointed at berth over mTLS.

Each mode prints one JSON object on stdout for the C++ test to check:

  sdk-run-logs    python3-docker: run a container, wait, read stdout/stderr logs, remove it.
  sdk-exec        python3-docker: start a container, exec_run a command, report its exit code.
  sdk-list        python3-docker: what the client sees: container names (all, running or not),
                  network names, volume names and image tags, each sorted; creates nothing.
  sdk-registry    python3-docker: log in to --registry, tag --image as --name (a reference in
                  that registry), push it, remove it, pull it back and run it; reports the push
                  and pull results and the tags the client sees.
  sdk-save-load   python3-docker: tag --image as --name, save it (GET /images/{name}/get), remove
                  the name, load the archive back and run it; reports the names the archive
                  and the load gave.
  raw-exec-start  plain TLS socket: POST /exec/{id}/start *without* an Upgrade header (the old
                  hijack still used by some SDKs); dockerd answers 200 with Content-Type
                  application/vnd.docker.raw-stream and then the multiplexed output.

Everything created carries the --label given, so the test fixture removes it afterwards.
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import urllib.parse


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["sdk-run-logs", "sdk-exec", "sdk-list", "sdk-registry",
                                     "sdk-save-load", "raw-exec-start", "raw-head"])
    ap.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    ap.add_argument("--bundle", required=True, help="directory with cert.pem and key.pem")
    ap.add_argument("--ca", required=True, help="CA that signed berth's server certificate")
    ap.add_argument("--image", required=True)
    ap.add_argument("--label", required=True, help="key=value put on every object created")
    ap.add_argument("--name", default=None)
    ap.add_argument("--path", default=None, help="request target for raw-head")
    ap.add_argument("--registry", default=None, help="host:port for sdk-registry")
    ap.add_argument("--user", default=None)
    ap.add_argument("--password", default=None)
    return ap.parse_args()


def label_dict(label):
    key, _, value = label.partition("=")
    return {key: value}


def sdk_client(args):
    import docker  # python3-docker 5.0 (Debian); imported here so raw mode does not need it

    tls = docker.tls.TLSConfig(
        client_cert=(os.path.join(args.bundle, "cert.pem"), os.path.join(args.bundle, "key.pem")),
        ca_cert=args.ca,
        verify=True,
    )
    return docker.DockerClient(base_url=args.url, tls=tls, timeout=60)


def sdk_run_logs(args):
    client = sdk_client(args)
    container = client.containers.run(
        args.image,
        ["sh", "-c", "echo sdk-out-$((6*7)); echo sdk-err >&2"],
        labels=label_dict(args.label),
        name=args.name,
        detach=True,
    )
    status = container.wait(timeout=60)
    out = container.logs(stdout=True, stderr=False).decode()
    err = container.logs(stdout=False, stderr=True).decode()
    container.remove()
    return {"status": status.get("StatusCode"), "stdout": out, "stderr": err}


def sdk_exec(args):
    client = sdk_client(args)
    container = client.containers.run(
        args.image, ["sleep", "300"], labels=label_dict(args.label), name=args.name, detach=True
    )
    result = container.exec_run(["sh", "-c", "echo exec-out; exit 5"])
    container.remove(force=True)
    return {"exit_code": result.exit_code, "output": result.output.decode()}


def sdk_list(args):
    client = sdk_client(args)
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True)),
        "networks": sorted(n.name for n in client.networks.list()),
        "volumes": sorted(v.name for v in client.volumes.list()),
        "images": sorted(t for i in client.images.list() for t in i.tags),
    }


def sdk_registry(args):
    client = sdk_client(args)
    auth = {"username": args.user, "password": args.password}
    login = client.login(username=args.user, password=args.password, registry=args.registry)
    repo, _, tag = args.name.rpartition(":")
    client.images.get(args.image).tag(repo, tag)
    pushed = [json.loads(line) for line in
              client.images.push(repo, tag, auth_config=auth).splitlines() if line.strip()]
    client.images.remove(args.name)
    pulled = client.images.pull(repo, tag, auth_config=auth)
    out = client.containers.run(args.name, ["echo", "sdk-pulled"], remove=True)
    return {
        "login": login.get("Status", ""),
        "push_errors": [m["error"] for m in pushed if "error" in m],
        "push_digest": next((m["aux"]["Digest"] for m in pushed if "aux" in m), ""),
        "pulled_tags": pulled.tags,
        "run": out.decode(),
        "tags": sorted(t for i in client.images.list() for t in i.tags),
    }


def sdk_save_load(args):
    import io
    import tarfile

    client = sdk_client(args)
    repo, _, tag = args.name.rpartition(":")
    client.images.get(args.image).tag(repo, tag)
    archive = b"".join(client.images.get(args.name).save(named=args.name))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    client.images.remove(args.name)
    loaded = client.images.load(archive)
    out = client.containers.run(args.name, ["echo", "sdk-loaded"], remove=True)
    return {
        "archive_tags": [t for m in manifest for t in (m.get("RepoTags") or [])],
        "loaded_tags": sorted(t for i in loaded for t in i.tags),
        "run": out.decode(),
    }


def tls_context(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(os.path.join(args.bundle, "cert.pem"), os.path.join(args.bundle, "key.pem"))
    return ctx


def api(args, ctx, method, path, body=None):
    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=30)
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError("%s %s -> %d %s" % (method, path, resp.status, payload[:300]))
    return json.loads(payload) if payload else None


def demux(raw):
    """Splits dockerd's multiplexed stream (8-byte frame headers) into stdout and stderr."""
    out, err, rest = b"", b"", raw
    while len(rest) >= 8:
        kind, size = rest[0], struct.unpack(">I", rest[4:8])[0]
        chunk, rest = rest[8 : 8 + size], rest[8 + size :]
        if kind == 2:
            err += chunk
        else:
            out += chunk
    return out.decode(errors="replace"), err.decode(errors="replace"), len(rest)


def raw_exec_start(args):
    ctx = tls_context(args)
    query = "?name=" + urllib.parse.quote(args.name) if args.name else ""
    created = api(
        args,
        ctx,
        "POST",
        "/containers/create" + query,
        {"Image": args.image, "Cmd": ["sleep", "300"], "Labels": label_dict(args.label)},
    )
    cid = created["Id"]
    api(args, ctx, "POST", "/containers/%s/start" % cid)
    exec_id = api(
        args,
        ctx,
        "POST",
        "/containers/%s/exec" % cid,
        {
            "AttachStdout": True,
            "AttachStderr": True,
            "Cmd": ["sh", "-c", "echo raw-out; echo raw-err >&2"],
        },
    )["Id"]

    url = urllib.parse.urlsplit(args.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    tls = ctx.wrap_socket(sock, server_hostname=url.hostname)
    body = b'{"Detach":false,"Tty":false}'
    tls.sendall(
        b"POST /exec/%s/start HTTP/1.1\r\n"
        b"Host: %s\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n"
        b"\r\n" % (exec_id.encode(), url.netloc.encode(), len(body)) + body
    )
    data = b""
    try:
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLEOFError, ConnectionResetError):
        pass  # an abrupt end after the output still counts: the output is what is checked
    tls.close()

    head, _, stream = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    out, err, leftover = demux(stream)
    inspect = api(args, ctx, "GET", "/exec/%s/json" % exec_id)
    return {
        "status_line": lines[0] if lines else "",
        "status": status,
        "headers": headers,
        "stdout": out,
        "stderr": err,
        "leftover_bytes": leftover,
        "exit_code": inspect.get("ExitCode"),
    }


def raw_head(args):
    ctx = tls_context(args)
    url = urllib.parse.urlsplit(args.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=15)
    tls = ctx.wrap_socket(sock, server_hostname=url.hostname)
    host = url.netloc.encode()
    tls.sendall(
        b"HEAD %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.path.encode(), host)
        + b"GET /_ping HTTP/1.1\r\nHost: %s\r\n\r\n" % host
    )
    data = b""
    try:
        # Until the ping's body ("OK") has arrived, or berth closes, or 15 s pass.
        while not data.rstrip().endswith(b"\r\n\r\nOK"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        pass
    tls.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    between, _, second = rest.partition(b"HTTP/1.1 ")
    if not second and not _:
        between, second = rest, b""
    return {
        "status": status,
        "between": between.decode(errors="replace"),
        "second_status": int(second[:3]) if second[:3].isdigit() else 0,
    }


def main():
    args = parse_args()
    modes = {
        "sdk-run-logs": sdk_run_logs,
        "sdk-exec": sdk_exec,
        "sdk-list": sdk_list,
        "sdk-registry": sdk_registry,
        "sdk-save-load": sdk_save_load,
        "raw-exec-start": raw_exec_start,
        "raw-head": raw_head,
    }
    json.dump(modes[args.mode](args), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
