#!/usr/bin/env bash
# A real RTMP + RTMPS ingest on loopback, for tests of the streaming worker.
#
# usage: tests/ingest/nginx.sh DIR RTMP_PORT RTMPS_PORT [HOOK_URL]
#
#   DIR        a directory of its own: nginx.conf, the self-signed TLS
#              certificate (cert.pem, key.pem; kept when already there, so a
#              restart serves the same one), error.log and nginx.pid go there
#   RTMP_PORT  plain RTMP on 127.0.0.1; publish to and play from
#              rtmp://127.0.0.1:RTMP_PORT/live/<key>
#   RTMPS_PORT TLS on 127.0.0.1, proxied to RTMP_PORT:
#              rtmps://127.0.0.1:RTMPS_PORT/live/<key> (self-signed: the worker
#              needs ACONFI_STREAM_INSECURE_TLS=1)
#   HOOK_URL   optional, e.g. http://127.0.0.1:8123: nginx POSTs a form to
#              HOOK_URL/publish when a publish starts and HOOK_URL/publish_done
#              when it ends (field `call` is `publish` / `publish_done`, `name`
#              is the stream key); the hook must answer 2xx or the publish is
#              refused
#
# Runs nginx in the foreground as a single process (exec: the caller's child
# *is* nginx, so killing it, even with SIGKILL, takes the ingest down at once).
# Needs Debian's nginx-light (or any nginx), libnginx-mod-rtmp,
# libnginx-mod-stream and openssl.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
dir=$(realpath -m "$1")
rtmp_port=$2
rtmps_port=$3
hook=${4:-}

command -v nginx >/dev/null || { echo "nginx.sh: nginx is missing (Debian: nginx-light)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "nginx.sh: openssl is missing (Debian: openssl)" >&2; exit 1; }
modules=/usr/lib/nginx/modules
for m in ngx_rtmp_module ngx_stream_module; do
  [ -f "$modules/$m.so" ] || {
    echo "nginx.sh: $modules/$m.so is missing (Debian: libnginx-mod-${m#ngx_}; e.g. libnginx-mod-rtmp)" >&2
    exit 1
  }
done

mkdir -p "$dir"
if [ ! -s "$dir/cert.pem" ] || [ ! -s "$dir/key.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 7 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
fi

hooks=""
if [ -n "$hook" ]; then
  hooks="on_publish $hook/publish;
            on_publish_done $hook/publish_done;"
fi

cat >"$dir/nginx.conf" <<EOF
load_module $modules/ngx_rtmp_module.so;
load_module $modules/ngx_stream_module.so;

# One process: a killed nginx leaves no worker behind holding the ports.
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 256;
}

rtmp {
    server {
        listen 127.0.0.1:$rtmp_port;
        chunk_size 4096;
        application live {
            live on;
            record off;
            # Players start on a keyframe, and are dropped when the publisher
            # goes (so a reader sees the publish end).
            wait_key on;
            wait_video on;
            idle_streams off;
            $hooks
        }
    }
}

stream {
    server {
        listen 127.0.0.1:$rtmps_port ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        proxy_pass 127.0.0.1:$rtmp_port;
    }
}
EOF

exec nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
