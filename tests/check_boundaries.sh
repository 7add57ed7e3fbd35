#!/bin/sh
# The modules' include boundaries (STYLE.md 1; issue #14), which linking cannot enforce since
# /usr/include is always on the path:
#   policy/   pure: no Asio, Beast or OpenSSL, and nothing of proxy/, metering/ or ctl/;
#   proxy/    the request path: policy/ only (never billing code, never the operator's tool);
#   metering/ billing: policy/vocabulary.hpp only (names shared with the proxy), never proxy/
#             or ctl/;
#   ctl/      the operator's tool: policy/ and metering/, never proxy/;
#   node/     the agent on each host (issue #16): none of the others (berth-proxy is its
#             client over the wire only), and no module includes it.
root="$1"
status=0
fail() {
  echo "$1" >&2
  status=1
}
includes() {  # DIR PATTERN: the #include lines of DIR's sources that match PATTERN
  grep -rnE "#include *[<\"]($2)" "$root/$1" 2>/dev/null
}
includes policy 'boost/asio|boost/beast|openssl/' && fail "policy/ must not include Asio, Beast or OpenSSL"
includes policy '(proxy|metering|ctl)/' && fail "policy/ must not depend on proxy/, metering/ or ctl/"
includes proxy '(metering|ctl)/' && fail "proxy/ must not depend on metering/ or ctl/"
if [ -d "$root/metering" ]; then
  includes metering 'policy/' | grep -v 'policy/vocabulary.hpp' &&
    fail "metering/ may include only policy/vocabulary.hpp from policy/"
  includes metering '(proxy|ctl)/' && fail "metering/ must not depend on proxy/ or ctl/"
fi
if [ -d "$root/ctl" ]; then
  includes ctl 'proxy/' && fail "ctl/ must not depend on proxy/"
fi
if [ -d "$root/node" ]; then
  includes node '(policy|proxy|metering|ctl)/' && fail "node/ must not depend on another module"
  for m in policy proxy metering ctl; do
    includes "$m" 'node/' && fail "$m/ must not include node/"
  done
fi
exit $status
