#!/bin/sh
# policy/ is pure: no sockets, no TLS, no Asio. metering/ shares only the vocabulary with it.
root="$1"
status=0
if grep -rnE '#include *[<"](boost/asio|boost/beast|openssl/)' "$root/policy"; then
  echo "policy/ must not include Asio, Beast or OpenSSL" >&2
  status=1
fi
if [ -d "$root/metering" ] &&
   grep -rnE '#include *"policy/' "$root/metering" | grep -v 'policy/vocabulary.hpp'; then
  echo "metering/ may include only policy/vocabulary.hpp from policy/" >&2
  status=1
fi
if grep -rnE '#include *"(proxy|metering)/' "$root/policy"; then
  echo "policy/ must not depend on proxy/ or metering/" >&2
  status=1
fi
exit $status
