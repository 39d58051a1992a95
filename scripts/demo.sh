#!/usr/bin/env bash
# A tour of portcullis on this machine, loopback only: a dev PKI, a gateway,
# "tunnel nc" and "tunnel forward" pushing data through it, a refusal, and
# the gateway's audit log. Everything it makes is under ./.demo (recreated).
# Run from the repository root after "make build" (make demo does both).
set -euo pipefail

cd "$(dirname "$0")/.."
GATEWAY=bin/gateway
TUNNEL=bin/tunnel
DEMO=.demo

for b in "$GATEWAY" "$TUNNEL"; do
	if [[ ! -x $b ]]; then
		echo "demo: $b not found: run \"make build\" first (or \"make demo\")" >&2
		exit 1
	fi
done

if [[ -t 1 ]]; then
	BOLD=$'\033[1m' DIM=$'\033[2m' RESET=$'\033[0m'
else
	BOLD='' DIM='' RESET=''
fi
step() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$RESET"; }
say() { printf '   %s\n' "$*"; }
show() { # show CMD...: print a command, then run it with its output indented
	local q
	q=$(printf '%q ' "$@")
	printf '   %s$ %s%s\n' "$DIM" "${q% }" "$RESET"
	"$@" 2>&1 | sed 's/^/     /'
}

# Every background process is recorded here and stopped on exit.
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX: print the first match of REGEX in FILE (a log that a
# background process writes), waiting at most 10 seconds for it.
wait_for() {
	local file=$1 regex=$2 i line
	for ((i = 0; i < 100; i++)); do
		if line=$(grep -m1 -oE "$regex" "$file" 2>/dev/null); then
			printf '%s\n' "$line"
			return 0
		fi
		sleep 0.1
	done
	echo "demo: timed out waiting for /$regex/ in $file:" >&2
	cat "$file" >&2 || true
	return 1
}

rm -rf "$DEMO"
mkdir -p "$DEMO"
START=$SECONDS

step "1. A development PKI with the gateway's own CA (gateway pki)"
say "A CA, a server certificate for the gateway (localhost, 127.0.0.1) and a client"
say "certificate for alice whose identity is the SPIFFE ID spiffe://demo/alice."
show "$GATEWAY" pki init --dir "$DEMO/pki" --name "demo CA"
show "$GATEWAY" pki issue --dir "$DEMO/pki" --server --name gw --dns localhost --ip 127.0.0.1
show "$GATEWAY" pki issue --dir "$DEMO/pki" --client --name alice --uri spiffe://demo/alice
CLIENT=(--cert "$DEMO/pki/alice.crt" --key "$DEMO/pki/alice.key" --ca "$DEMO/pki/ca.crt")

ROUTES=(--route echo=builtin:echo)
WEB=
step "2. A backend to reach: a small HTTP server on loopback"
if command -v python3 >/dev/null 2>&1; then
	mkdir -p "$DEMO/www"
	echo "hello from the web backend behind portcullis" >"$DEMO/www/index.html"
	python3 -u -m http.server --bind 127.0.0.1 --directory "$DEMO/www" 0 >"$DEMO/web.log" 2>&1 &
	PIDS+=($!)
	WEB=$(wait_for "$DEMO/web.log" 'port [0-9]+' | cut -d' ' -f2)
	ROUTES+=(--route "web=127.0.0.1:$WEB")
	say "python3 -m http.server on 127.0.0.1:$WEB, reachable as route \"web\"."
else
	say "python3 not found: skipping the web backend; the built-in echo route remains."
fi

step "3. The gateway, on 127.0.0.1 (a free port), JSON audit log in $DEMO/gateway.log"
say "Only 127.0.0.0/8 may connect, only identities spiffe://demo/* get in; routes:"
say "echo (built into the gateway)${WEB:+ and web (the HTTP server)}."
printf '   %s$ %s%s\n' "$DIM" "$GATEWAY run --listen 127.0.0.1:0 --cert $DEMO/pki/gw.crt --key $DEMO/pki/gw.key --ca $DEMO/pki/ca.crt --allow 127.0.0.0/8 --allow-id 'uri:spiffe://demo/*' ${ROUTES[*]} --drain-timeout 5s" "$RESET"
"$GATEWAY" run --listen 127.0.0.1:0 \
	--cert "$DEMO/pki/gw.crt" --key "$DEMO/pki/gw.key" --ca "$DEMO/pki/ca.crt" \
	--allow 127.0.0.0/8 --allow-id 'uri:spiffe://demo/*' "${ROUTES[@]}" --drain-timeout 5s \
	2>"$DEMO/gateway.log" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GW=$(wait_for "$DEMO/gateway.log" '"event":"listening","addr":"[^"]+"' | sed -E 's/.*"addr":"([^"]+)"/\1/')
say "listening on $GW"

step "4. tunnel nc: stdin and stdout through one stream (netcat style)"
say "input: \"hello through the gateway\""
show "$TUNNEL" nc echo --gateway "$GW" "${CLIENT[@]}" <<<"hello through the gateway"

step "5. tunnel forward: local ports, one mTLS session to the gateway"
LOCALS=(-L 127.0.0.1:0=echo)
if [[ -n $WEB ]]; then
	LOCALS+=(-L 127.0.0.1:0=web)
fi
printf '   %s$ %s%s\n' "$DIM" "$TUNNEL forward ${LOCALS[*]} --gateway $GW --cert ... --key ... --ca ..." "$RESET"
"$TUNNEL" forward "${LOCALS[@]}" --gateway "$GW" "${CLIENT[@]}" --log-format json 2>"$DEMO/tunnel.log" &
TUNNEL_PID=$!
PIDS+=("$TUNNEL_PID")
ECHO_LOCAL=$(wait_for "$DEMO/tunnel.log" '"addr":"[^"]+","route":"echo"' | sed -E 's/"addr":"([^"]+)".*/\1/')
say "route echo is at $ECHO_LOCAL"
say "8 MiB of random bytes in, the echo out, over a plain TCP connection to $ECHO_LOCAL:"
head -c $((8 << 20)) /dev/urandom >"$DEMO/random.bin"
exec 3<>"/dev/tcp/${ECHO_LOCAL%:*}/${ECHO_LOCAL##*:}"
cat "$DEMO/random.bin" >&3 &
WRITER=$!
timeout 30 head -c $((8 << 20)) <&3 >"$DEMO/echoed.bin"
wait "$WRITER"
exec 3>&-
SENT=$(sha256sum <"$DEMO/random.bin" | cut -d' ' -f1)
BACK=$(sha256sum <"$DEMO/echoed.bin" | cut -d' ' -f1)
say "sha256 sent:     $SENT"
say "sha256 received: $BACK"
if [[ $SENT != "$BACK" ]]; then
	echo "demo: the echoed data differs from what was sent" >&2
	exit 1
fi
say "identical."
if [[ -n $WEB ]]; then
	WEB_LOCAL=$(wait_for "$DEMO/tunnel.log" '"addr":"[^"]+","route":"web"' | sed -E 's/"addr":"([^"]+)".*/\1/')
	say "route web is at $WEB_LOCAL: plain HTTP on this side, mTLS to the gateway:"
	show curl -sS --max-time 10 "http://$WEB_LOCAL/"
fi

step "6. A refusal: a route the gateway does not have"
set +e
"$TUNNEL" nc nosuch --gateway "$GW" "${CLIENT[@]}" </dev/null 2>"$DEMO/refusal.txt"
STATUS=$?
set -e
say "tunnel nc nosuch: exit status $STATUS (3: the gateway refused the stream)"
sed 's/^/   /' "$DEMO/refusal.txt"
if [[ $STATUS -ne 3 ]]; then
	echo "demo: expected exit status 3" >&2
	exit 1
fi

step "7. Stop: SIGTERM drains the gateway; its audit log"
kill -TERM "$TUNNEL_PID"
wait "$TUNNEL_PID" || true
kill -TERM "$GATEWAY_PID"
set +e
wait "$GATEWAY_PID"
STATUS=$?
set -e
say "gateway exit status $STATUS"
say "a few audit events from $DEMO/gateway.log:"
EVENTS='accept|stream_open|stream_close|stream_refused|handshake_failed|deny|draining'
if command -v jq >/dev/null 2>&1; then
	jq -c --arg re "^($EVENTS)\$" 'select(.event | test($re))
		| {event, identity: .identity.name?, route, status, reason, bytes_in, bytes_out}
		| with_entries(select(.value != null))' "$DEMO/gateway.log" | head -n 12 | sed 's/^/   /'
else
	grep -E "\"event\":\"($EVENTS)\"" "$DEMO/gateway.log" | head -n 12 | sed 's/^/   /'
fi
if [[ $STATUS -ne 0 ]]; then
	echo "demo: the gateway exited with status $STATUS" >&2
	exit 1
fi
say ""
say "done in $((SECONDS - START))s; files in $DEMO/"
